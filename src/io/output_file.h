#pragma once
// Output files that appear complete or not at all: the one writer of the library and the CLI
// for every file a user asked for (calibrated models, reports, predictions, plots).
//
// The content goes to a temporary in the same directory (".NAME.tmp-PID", so the final
// rename never crosses file systems), renamed over NAME by commit(). Until then NAME is
// untouched (an older NAME stays as it was). An error (the destructor runs without commit)
// removes the temporary.
//
// A NAME that exists and is neither a regular file nor a directory (/dev/null, /dev/stdout, a
// named pipe) is written directly: a rename would replace the device or pipe by a regular
// file (and, run as root, break /dev/null for the whole machine).
//
// Signals: every open temporary is recorded in a process-wide table, but the library never
// installs a signal handler by itself (that is the program's business). A program that wants
// SIGINT and SIGTERM to remove the open temporaries calls remove_temporaries_on_signals() once
// at startup (the fcabert CLI does, in src/cli/main.cpp). From then on, the first OutputFile
// to open installs handlers that remove every open temporary and exit with 128 + the signal
// number (130 for SIGINT, 143 for SIGTERM), as a shell would report a process killed by it;
// until a file is open the signals keep their previous disposition.
#include <fstream>
#include <ostream>
#include <string>

namespace fcabert {

class OutputFile {
 public:
  // Creates the temporary next to `path`. Throws fcabert::Error naming `path`.
  explicit OutputFile(std::string path);
  ~OutputFile();  // removes the temporary unless committed
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  std::ostream& stream() { return out_; }
  const std::string& path() const { return path_; }
  const std::string& temporary() const { return temporary_; }  // empty when written directly

  // Pushes what was written so far into the temporary, e.g. to read it back before commit().
  // Throws fcabert::Error naming path() (and removes the temporary) on a write error.
  void flush();

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
  bool direct_ = false;  // a device or pipe: no temporary
};

// Writes `content` to `path` through an OutputFile.
void write_file_atomically(const std::string& path, const std::string& content);

// Opts this process into removing the open temporaries on SIGINT and SIGTERM (see above).
// Call it at startup, before any thread writes files. Idempotent.
void remove_temporaries_on_signals();

}  // namespace fcabert
