#include "io/output_file.h"

#include <unistd.h>

#include <array>
#include <atomic>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "fcabert/error.h"

namespace fcabert {
namespace {

// The temporaries a signal handler must remove. Process-wide by necessity: a signal handler
// gets no argument to find them by, so the table is global state, and it is confined to this
// file (nothing else can reach it). Fixed storage: the handler may only touch memory that is
// never reallocated, and may only call async-signal-safe functions (unlink, _exit). A slot is
// filled before it is published (`used`) and unpublished before reuse.
constexpr size_t kSlots = 16;
constexpr size_t kPathBytes = 4096;
struct Slot {
  std::atomic<bool> used{false};
  char path[kPathBytes] = {};
};
std::array<Slot, kSlots> slots;
std::mutex slots_mutex;  // between threads registering files; never taken by the handler
static_assert(std::atomic<bool>::is_always_lock_free, "the signal handler reads the flags");

extern "C" void remove_temporaries_and_exit(int signal_number) {
  for (Slot& slot : slots)
    if (slot.used.load()) ::unlink(slot.path);
  ::_exit(128 + signal_number);
}

// Set by remove_temporaries_on_signals(): the program asked for the handlers.
std::atomic<bool> cleanup_on_signals{false};

// Installed lazily, when the first file opens: until there is a temporary to remove, SIGINT
// and SIGTERM keep whatever disposition the program had (by default: killed by the signal).
void install_handlers() {
  if (!cleanup_on_signals.load()) return;
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action {};
    action.sa_handler = remove_temporaries_and_exit;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, nullptr);
    ::sigaction(SIGTERM, &action, nullptr);
  });
}

int register_temporary(const std::string& path) {
  if (path.size() >= kPathBytes) return -1;  // not removable on a signal; still removed on errors
  std::lock_guard<std::mutex> lock(slots_mutex);
  for (size_t i = 0; i < kSlots; ++i) {
    if (slots[i].used.load()) continue;
    std::memcpy(slots[i].path, path.c_str(), path.size() + 1);
    slots[i].used.store(true);
    return static_cast<int>(i);
  }
  return -1;
}

void unregister_temporary(int slot) {
  if (slot < 0) return;
  std::lock_guard<std::mutex> lock(slots_mutex);
  slots[static_cast<size_t>(slot)].used.store(false);
}

std::string temporary_for(const std::string& path) {
  const std::filesystem::path target(path);
  const std::string name = "." + target.filename().string() + ".tmp-" + std::to_string(::getpid());
  return (target.parent_path() / name).string();
}

}  // namespace

OutputFile::OutputFile(std::string path) : path_(std::move(path)), temporary_(temporary_for(path_)) {
  if (path_.empty()) throw Error("the output file name is empty");
  std::error_code ec;
  const std::filesystem::file_status status = std::filesystem::status(path_, ec);
  if (std::filesystem::is_directory(status)) throw Error(path_ + ": cannot write: it is a directory");
  if (std::filesystem::exists(status) && !std::filesystem::is_regular_file(status)) {
    direct_ = true;  // a device or a pipe
    temporary_.clear();
    out_.open(path_, std::ios::binary | std::ios::trunc);
    if (!out_) throw Error(path_ + ": cannot open for writing");
    open_ = true;
    return;
  }
  install_handlers();
  slot_ = register_temporary(temporary_);  // before the file exists: a signal may come any time
  out_.open(temporary_, std::ios::binary | std::ios::trunc);
  if (!out_) {
    unregister_temporary(slot_);
    throw Error(path_ + ": cannot write (could not create the temporary " + temporary_ +
                "; does the directory exist and is it writable?)");
  }
  open_ = true;
}

OutputFile::~OutputFile() { discard(); }

void OutputFile::discard() noexcept {
  if (!open_) return;
  open_ = false;
  out_.close();
  if (direct_) return;
  std::error_code ignored;
  std::filesystem::remove(temporary_, ignored);
  unregister_temporary(slot_);
}

void OutputFile::flush() {
  if (!open_) throw Error(path_ + ": internal error: the output was already closed");
  out_.flush();
  if (!out_) {
    discard();
    throw Error(path_ + ": write error (disk full?); nothing was written to " + path_);
  }
}

void OutputFile::commit() {
  if (!open_) throw Error(path_ + ": internal error: the output was already closed");
  out_.flush();
  out_.close();
  if (!out_) {
    discard();
    throw Error(path_ + ": write error (disk full?); nothing was written to " + path_);
  }
  if (direct_) {
    open_ = false;
    return;
  }
  std::error_code error;
  std::filesystem::rename(temporary_, path_, error);
  if (error) {
    discard();
    throw Error(path_ + ": cannot write (renaming " + temporary_ + " failed: " + error.message() + ")");
  }
  open_ = false;
  unregister_temporary(slot_);
}

void write_file_atomically(const std::string& path, const std::string& content) {
  OutputFile file(path);
  file.stream() << content;
  file.commit();
}

void remove_temporaries_on_signals() { cleanup_on_signals.store(true); }

}  // namespace fcabert
