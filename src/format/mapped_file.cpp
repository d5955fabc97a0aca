// MappedFile: read-only POSIX mapping of a whole file.
#include "format/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "fcabert/error.h"

namespace fcabert::format {
namespace {

Error open_error(const std::string& path, const std::string& what) {
  return Error(path + ": cannot open model file: " + what);
}

// Closes the descriptor when the mapping is done (or on error).
struct FileDescriptor {
  int fd = -1;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

MappedFile MappedFile::open(const std::string& path) {
  FileDescriptor file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) throw open_error(path, std::strerror(errno));
  struct stat status {};
  if (::fstat(file.fd, &status) != 0) throw open_error(path, std::strerror(errno));
  if (S_ISDIR(status.st_mode)) throw open_error(path, "it is a directory, not a file");
  if (!S_ISREG(status.st_mode)) throw open_error(path, "it is not a regular file");
  const auto size = static_cast<uint64_t>(status.st_size);
  if (size == 0) return MappedFile(nullptr, 0);
  void* address = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_PRIVATE, file.fd, 0);
  if (address == MAP_FAILED) throw open_error(path, std::string("mmap failed: ") + std::strerror(errno));
  return MappedFile(address, size);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : address_(std::exchange(other.address_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    address_ = std::exchange(other.address_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() { release(); }

void MappedFile::release() noexcept {
  if (address_ != nullptr) ::munmap(address_, static_cast<size_t>(size_));
  address_ = nullptr;
  size_ = 0;
}

}  // namespace fcabert::format
