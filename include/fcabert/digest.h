#pragma once
// SHA-256 (OpenSSL's libcrypto), for what must agree across machines: the model a report or a
// shard was made with is named by the digest of its file, not by its path, and the shards of
// one classify job by the digest of the input lines they read.
#include <memory>
#include <string>
#include <string_view>

namespace fcabert {

// An incremental SHA-256.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::string_view bytes);
  // The digest of everything given so far, as 64 lowercase hex digits; the hash can go on.
  std::string hex_digest() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The SHA-256 of a whole file, as 64 lowercase hex digits (what `sha256sum` prints). Throws
// fcabert::Error naming the file when it cannot be read.
std::string file_sha256(const std::string& path);

}  // namespace fcabert
