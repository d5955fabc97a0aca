// OutputFile (src/io/output_file.h): the target appears only on commit, an older target stays
// as it was until then, an uncommitted file leaves nothing behind, errors name the file, and
// SIGINT / SIGTERM remove the open temporaries only once the program opted in.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "fcabert/error.h"
#include "io/output_file.h"

namespace fcabert {
namespace {

namespace fs = std::filesystem;

class OutputFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("fcabert_output_file_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    target_ = (dir_ / "result.txt").string();
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  static std::string read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  void write_old_target() const { std::ofstream(target_, std::ios::binary) << "an older result\n"; }

  // Every file in the folder other than the target: temporaries left behind.
  std::vector<std::string> leftovers() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_))
      if (entry.path().string() != target_) names.push_back(entry.path().filename().string());
    return names;
  }

  std::string error_of(const std::string& path) const {
    try {
      OutputFile file(path);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
  std::string target_;
};

TEST_F(OutputFileTest, TheTargetChangesOnlyOnCommit) {
  write_old_target();
  OutputFile file(target_);
  EXPECT_EQ(file.path(), target_);
  EXPECT_EQ(fs::path(file.temporary()).parent_path(), dir_);
  EXPECT_EQ(fs::path(file.temporary()).filename().string(), ".result.txt.tmp-" + std::to_string(::getpid()));
  file.stream() << "new result\n";
  file.flush();
  EXPECT_EQ(read(file.temporary()), "new result\n");  // readable before the commit
  EXPECT_EQ(read(target_), "an older result\n");
  file.commit();
  EXPECT_EQ(read(target_), "new result\n");
  EXPECT_TRUE(leftovers().empty());
  EXPECT_THROW(file.commit(), Error);  // once only
}

TEST_F(OutputFileTest, WithoutCommitNothingIsLeft) {
  write_old_target();
  std::string temporary;
  {
    OutputFile file(target_);
    temporary = file.temporary();
    file.stream() << "half a result";
    file.flush();
    EXPECT_TRUE(fs::exists(temporary));
  }
  EXPECT_FALSE(fs::exists(temporary));
  EXPECT_EQ(read(target_), "an older result\n");
  { OutputFile unused((dir_ / "new.txt").string()); }
  EXPECT_FALSE(fs::exists(dir_ / "new.txt"));
  EXPECT_TRUE(leftovers().empty());
}

TEST_F(OutputFileTest, WriteFileAtomically) {
  write_old_target();
  write_file_atomically(target_, "{\"a\": 1}\n");
  EXPECT_EQ(read(target_), "{\"a\": 1}\n");
  EXPECT_TRUE(leftovers().empty());
}

// A device or a named pipe is written directly: a temporary renamed over it would replace it by
// a regular file (run as root, `--output /dev/null` once destroyed the machine's /dev/null).
TEST_F(OutputFileTest, APipeIsWrittenDirectlyAndStaysAPipe) {
  const std::string fifo = (dir_ / "pipe").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string received;
  std::thread reader([&] {
    std::ifstream in(fifo, std::ios::binary);
    received.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  });
  {
    OutputFile out(fifo);
    EXPECT_EQ(out.temporary(), "");
    out.stream() << "through the pipe\n";
    out.commit();
  }
  reader.join();
  EXPECT_EQ(received, "through the pipe\n");
  EXPECT_TRUE(fs::is_fifo(fifo));
  EXPECT_EQ(leftovers(), std::vector<std::string>{"pipe"});  // nothing else was created
}

TEST_F(OutputFileTest, ErrorsNameTheFile) {
  EXPECT_NE(error_of("").find("the output file name is empty"), std::string::npos);
  const std::string folder = dir_.string();
  EXPECT_NE(error_of(folder).find(folder + ": cannot write: it is a directory"), std::string::npos);
  const std::string missing = (dir_ / "nope" / "out.txt").string();
  const std::string message = error_of(missing);
  EXPECT_EQ(message.rfind(missing + ": cannot write (could not create the temporary", 0), 0u) << message;
  EXPECT_TRUE(leftovers().empty());
}

// Death tests: each runs in a child process, so opting in there leaves this process as it was.
TEST_F(OutputFileTest, SignalsRemoveTheTemporariesOnceOptedIn) {
  write_old_target();
  for (int signal_number : {SIGINT, SIGTERM}) {
    EXPECT_EXIT(
        {
          remove_temporaries_on_signals();
          OutputFile file(target_);
          OutputFile other((dir_ / "other.txt").string());
          file.stream() << "half a result";
          file.flush();
          std::raise(signal_number);
        },
        ::testing::ExitedWithCode(128 + signal_number), "");
    EXPECT_EQ(read(target_), "an older result\n");
    EXPECT_TRUE(leftovers().empty()) << leftovers().front();
  }
}

TEST_F(OutputFileTest, NoHandlersWithoutOptingIn) {
  // The library alone never takes over the signals: the process dies of SIGTERM as usual and
  // the temporary stays (it is the program's choice).
  EXPECT_EXIT(
      {
        OutputFile file(target_);
        std::raise(SIGTERM);
      },
      ::testing::KilledBySignal(SIGTERM), "");
  EXPECT_EQ(leftovers().size(), 1u);
  // Opted in, but no file open yet: the handlers are not installed until one opens.
  EXPECT_EXIT(
      {
        remove_temporaries_on_signals();
        std::raise(SIGTERM);
      },
      ::testing::KilledBySignal(SIGTERM), "");
}

}  // namespace
}  // namespace fcabert
