// SHA-256 (include/fcabert/digest.h) against the FIPS 180-2 test vectors, incremental hashing,
// and whole files as sha256sum prints them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "fcabert/digest.h"
#include "fcabert/error.h"

namespace fcabert {
namespace {

std::string sha256(const std::string& bytes) {
  Sha256 hash;
  hash.update(bytes);
  return hash.hex_digest();
}

TEST(Sha256, MatchesTheStandardsTestVectors) {
  EXPECT_EQ(sha256(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, HashesPieceByPieceAndGoesOnAfterADigest) {
  Sha256 hash;
  hash.update("ab");
  EXPECT_EQ(hash.hex_digest(), sha256("ab"));
  hash.update("c");
  EXPECT_EQ(hash.hex_digest(), sha256("abc"));
}

TEST(FileSha256, IsTheDigestOfTheWholeFile) {
  const auto path =
      std::filesystem::path(::testing::TempDir()) / ("fcabert_digest_" + std::to_string(::getpid()));
  std::string bytes(3 << 20, '\0');  // more than one read buffer
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7 + i / 4096);
  std::ofstream(path, std::ios::binary) << bytes;
  EXPECT_EQ(file_sha256(path.string()), sha256(bytes));
  std::filesystem::remove(path);
  try {
    file_sha256(path.string());
    FAIL() << "a missing file was hashed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string() + ": cannot open"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace fcabert
