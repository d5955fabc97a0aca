#pragma once
// A file mapped read-only into memory (POSIX mmap), released on destruction.
#include <cstdint>
#include <string>

namespace fcabert::format {

class MappedFile {
 public:
  // Opens and maps `path`; an empty file maps to no bytes. Throws fcabert::Error naming the path.
  static MappedFile open(const std::string& path);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return static_cast<const uint8_t*>(address_); }
  uint64_t size() const { return size_; }

 private:
  MappedFile(void* address, uint64_t size) : address_(address), size_(size) {}
  void release() noexcept;

  void* address_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace fcabert::format
