#include "fcabert/digest.h"

#include <openssl/evp.h>

#include <fstream>
#include <vector>

#include "fcabert/error.h"

namespace fcabert {

struct Sha256::State {
  EVP_MD_CTX* context = nullptr;
  ~State() { EVP_MD_CTX_free(context); }
};

namespace {

void check(int ok, const char* what) {
  if (ok != 1) throw Error(std::string("SHA-256: OpenSSL's ") + what + " failed");
}

}  // namespace

Sha256::Sha256() : state_(std::make_unique<State>()) {
  state_->context = EVP_MD_CTX_new();
  if (state_->context == nullptr) throw Error("SHA-256: out of memory for OpenSSL's digest context");
  check(EVP_DigestInit_ex(state_->context, EVP_sha256(), nullptr), "EVP_DigestInit_ex");
}

Sha256::~Sha256() = default;

void Sha256::update(std::string_view bytes) {
  check(EVP_DigestUpdate(state_->context, bytes.data(), bytes.size()), "EVP_DigestUpdate");
}

std::string Sha256::hex_digest() const {
  // Finalizing ends a context, so finalize a copy and keep hashing into the original.
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> copy(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!copy) throw Error("SHA-256: out of memory for OpenSSL's digest context");
  check(EVP_MD_CTX_copy_ex(copy.get(), state_->context), "EVP_MD_CTX_copy_ex");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  check(EVP_DigestFinal_ex(copy.get(), digest, &size), "EVP_DigestFinal_ex");
  static constexpr char kHexDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * size);
  for (unsigned int i = 0; i < size; ++i) {
    hex.push_back(kHexDigits[digest[i] >> 4]);
    hex.push_back(kHexDigits[digest[i] & 0xf]);
  }
  return hex;
}

std::string file_sha256(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open to compute its SHA-256 (check that it exists and is readable)");
  Sha256 hash;
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    hash.update(std::string_view(buffer.data(), static_cast<size_t>(in.gcount())));
  }
  if (in.bad()) throw Error(path + ": read error while computing its SHA-256");
  return hash.hex_digest();
}

}  // namespace fcabert
