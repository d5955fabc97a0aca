#pragma once
// Output files that appear complete or not at all. The results are written to a temporary
// in the same directory (".NAME.tmp-PID", so the final rename never crosses file systems)
// and renamed over NAME by commit(). Until then NAME is untouched (an older NAME stays as it
// was). An error (the destructor runs without commit) removes the temporary; so does SIGINT
// or SIGTERM while any OutputFile is open: the handler removes every open temporary and
// exits with 128 + the signal number (130 for SIGINT, 143 for SIGTERM), as a shell would
// report a process killed by it.
#include <fstream>
#include <ostream>
#include <string>

namespace fcabert::cli {

class OutputFile {
 public:
  // Creates the temporary next to `path`. Throws fcabert::Error naming `path`.
  explicit OutputFile(std::string path);
  ~OutputFile();  // removes the temporary unless committed
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  std::ostream& stream() { return out_; }
  const std::string& path() const { return path_; }
  const std::string& temporary() const { return temporary_; }

  // Flushes, checks that every write succeeded, closes and renames the temporary to path().
  // Throws fcabert::Error naming path() (and removes the temporary) on failure.
  void commit();

 private:
  void discard() noexcept;

  std::string path_;
  std::string temporary_;
  std::ofstream out_;
  int slot_ = -1;  // in the signal handler's table of temporaries
  bool open_ = false;
};

// Writes `content` to `path` through an OutputFile.
void write_file_atomically(const std::string& path, const std::string& content);

}  // namespace fcabert::cli
