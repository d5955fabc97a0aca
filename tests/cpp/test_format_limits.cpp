// Model-file limits that hold: a file declaring absurd sizes is refused by validation, before
// anything in proportion to the declared size is allocated. Each case runs ModelFile::open in
// a child process whose address space is capped (RLIMIT_AS) a little above what the test
// process already maps, so a large allocation fails there (std::bad_alloc, or a crash) and
// the test fails; the error must also be the validation message for the case. Under
// AddressSanitizer (which reserves terabytes of shadow memory) the cap cannot be applied:
// only the messages are checked then.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <new>
#include <sstream>
#include <string>

#include "format_test_util.h"

#if defined(__SANITIZE_ADDRESS__)
#define FCABERT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FCABERT_ASAN 1
#endif
#endif

namespace fcabert {
namespace {

using format_test::encode_u64;
using format_test::read_bytes;
using format_test::rewrite_header;
using format_test::rewrite_header_text;
using format_test::temp_path;
using format_test::tiny_info;
using format_test::tiny_tensors;
using format_test::write_bytes;
using nlohmann::json;

// Virtual memory the process maps now (VmSize), in bytes; 0 if unknown.
uint64_t mapped_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmSize:", 0) == 0) return std::stoull(line.substr(7)) * 1024;
  return 0;
}

constexpr uint64_t kHeadroom = uint64_t{256} << 20;  // what the child may allocate: 256 MB

// Child exit codes.
enum Outcome { kRefused = 0, kAccepted = 10, kOutOfMemory = 11, kWrongMessage = 12, kOther = 13 };

// Opens `path` (in a memory-capped child unless built with ASan) and expects an
// fcabert::Error containing `phrase`.
void expect_refused_cheaply(const std::string& path, const std::string& phrase) {
  auto attempt = [&]() -> int {
    try {
      ModelFile::open(path);
      return kAccepted;
    } catch (const Error& e) {
      return std::string(e.what()).find(phrase) != std::string::npos ? kRefused : kWrongMessage;
    } catch (const std::bad_alloc&) {
      return kOutOfMemory;
    } catch (...) {
      return kOther;
    }
  };
#ifdef FCABERT_ASAN
  const int outcome = attempt();
  EXPECT_EQ(outcome, kRefused) << "(no memory cap under ASan) for " << path << ", phrase \"" << phrase
                               << "\"";
#else
  const uint64_t now = mapped_bytes();
  ASSERT_GT(now, 0u);
  std::fflush(nullptr);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const rlimit limit{now + kHeadroom, now + kHeadroom};
    if (::setrlimit(RLIMIT_AS, &limit) != 0) ::_exit(kOther);
    ::_exit(attempt());
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "the child crashed (signal " << WTERMSIG(status) << ") on " << path;
  EXPECT_EQ(WEXITSTATUS(status), kRefused)
      << "10 = accepted, 11 = out of memory under a " << (kHeadroom >> 20) << " MB cap, 12 = another error "
      << "than \"" << phrase << "\", 13 = other exception; file " << path;
#endif
  // And the same in this process, to show the message.
  try {
    ModelFile::open(path);
    ADD_FAILURE() << "accepted " << path;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(phrase), std::string::npos) << e.what();
    EXPECT_LT(std::string(e.what()).size(), 2000u) << "messages quote values briefly";
  }
}

class Limits : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = temp_path(std::string("limits_") + test->name() + ".fcab");
    write_model_file(path_, tiny_info(), tiny_tensors(tiny_info()));
  }
  void TearDown() override { std::remove(path_.c_str()); }
  void set_length_field(uint64_t length) {
    std::string bytes = read_bytes(path_);
    bytes.replace(0, 8, encode_u64(length));
    write_bytes(path_, bytes);
  }
  void set_shape(const std::string& tensor, const json& shape) {
    rewrite_header(path_, [&](json& header) { header[tensor]["shape"] = shape; });
  }
  void edit_section(const std::string& key, const std::function<void(json&)>& edit) {
    rewrite_header(path_, [&](json& header) {
      json section = json::parse(header["__metadata__"][key].get<std::string>());
      edit(section);
      header["__metadata__"][key] = section.dump();
    });
  }
  std::string path_;
};

TEST_F(Limits, ValidTinyFileOpensUnderTheCap) {
  // The harness itself must not refuse a good file (else every case below would pass).
#ifndef FCABERT_ASAN
  const uint64_t now = mapped_bytes();
  std::fflush(nullptr);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const rlimit limit{now + kHeadroom, now + kHeadroom};
    ::setrlimit(RLIMIT_AS, &limit);
    try {
      ModelFile::open(path_);
      ::_exit(0);
    } catch (...) {
      ::_exit(1);
    }
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
#endif
  EXPECT_NO_THROW(ModelFile::open(path_));
}

TEST_F(Limits, TwoGigabyteHeaderLength) {
  set_length_field(uint64_t{2} << 30);
  expect_refused_cheaply(path_, "exceeds the 100 MB limit");
}

TEST_F(Limits, HeaderLengthJustUnderTheLimitButPastTheEnd) {
  set_length_field(99'000'000);
  expect_refused_cheaply(path_, "file is truncated: the header declares 99000000 bytes");
}

TEST_F(Limits, MaximalHeaderLength) {
  set_length_field(~uint64_t{0});
  expect_refused_cheaply(path_, "exceeds the 100 MB limit");
}

TEST_F(Limits, TeraElementTensor) {
  set_shape("bert.pooler.dense.weight", {1000000, 1000000});  // 10^12 elements
  expect_refused_cheaply(path_, "needs 4000000000000 bytes of F32, more than the whole data section");
}

TEST_F(Limits, DimensionsWhoseProductOverflows) {
  set_shape("bert.pooler.dense.weight", {uint64_t{1} << 32, uint64_t{1} << 32, 4});
  expect_refused_cheaply(path_, "element count overflows int64");
  set_shape("bert.pooler.dense.weight", {uint64_t{1} << 62, 1});
  expect_refused_cheaply(path_, "byte size overflows int64");
  set_shape("bert.pooler.dense.weight", {~uint64_t{0}});
  expect_refused_cheaply(path_, "overflows int64");
}

TEST_F(Limits, OffsetsPastTheEnd) {
  rewrite_header(path_, [](json& header) {
    auto& entry = header["bert.pooler.dense.bias"];
    const uint64_t begin = entry["data_offsets"][0].get<uint64_t>() + (uint64_t{1} << 40);
    entry["data_offsets"] = {begin, begin + 32};
  });
  expect_refused_cheaply(path_, "extends past the end of the file");
}

TEST_F(Limits, HugeNumLayers) {
  // Every tensor is still there; only the metadata claims 10^12 layers.
  edit_section("config", [](json& config) { config["num_layers"] = 1000000000000LL; });
  edit_section("fca", [](json& fca) { fca["keep_ratios"] = json::array(); });
  expect_refused_cheaply(path_, "num_layers 1000000000000 needs 16 tensors per layer");
}

TEST_F(Limits, HugeGeometryWithoutTheTensors) {
  edit_section("config", [](json& config) {
    config["hidden_size"] = int64_t{1} << 40;
    config["num_heads"] = 1;
    config["intermediate_size"] = int64_t{1} << 40;
    config["max_position_embeddings"] = int64_t{1} << 40;
    config["type_vocab_size"] = int64_t{1} << 40;
  });
  expect_refused_cheaply(path_, "does not match");
}

// A million nested arrays: parsing is iterative, but quoting such a value in a message (or
// comparing it) recursed once per level and overflowed the stack (found by the fuzzer's
// seeds being mutated by hand; fuzz/regressions/model_file/ keeps a small variant).
TEST_F(Limits, DeeplyNestedShape) {
  rewrite_header_text(path_, [](std::string& text) {
    const size_t at = text.find("\"shape\":[");
    ASSERT_NE(at, std::string::npos);
    text.insert(at + 9, std::string(1'000'000, '[') + std::string(1'000'000, ']') + ",");
  });
  expect_refused_cheaply(path_, "nested more than 64 levels deep");
}

TEST_F(Limits, DeeplyNestedHeader) {
  const std::string text = "{\"a\":" + std::string(1'000'000, '[') + std::string(1'000'000, ']') + "}";
  write_bytes(path_, encode_u64(text.size()) + text);
  expect_refused_cheaply(path_, "nested more than 64 levels deep");
}

TEST_F(Limits, DeeplyNestedProvenance) {
  rewrite_header(path_, [](json& header) {
    header["__metadata__"]["provenance"] =
        "{\"a\":" + std::string(1'000'000, '[') + std::string(1'000'000, ']') + "}";
  });
  expect_refused_cheaply(path_, "metadata \"provenance\" is nested more than 64 levels deep");
}

TEST_F(Limits, DeeplyNestedConfigValue) {
  rewrite_header(path_, [](json& header) {
    json config = json::parse(header["__metadata__"]["config"].get<std::string>());
    std::string text = config.dump();
    text.insert(1, "\"x\":" + std::string(200'000, '[') + std::string(200'000, ']') + ",");
    header["__metadata__"]["config"] = text;
  });
  expect_refused_cheaply(path_, "metadata \"config\" is nested more than 64 levels deep");
}

TEST_F(Limits, HugeValueQuotedBriefly) {
  edit_section("config", [](json& config) { config["num_heads"] = std::string(5'000'000, '7'); });
  expect_refused_cheaply(path_, "\"num_heads\" must be an integer, got \"7777");
}

}  // namespace
}  // namespace fcabert
