#pragma once
// Replays the fuzz targets' committed inputs in the unit tests: every seed in
// fuzz/corpus/<target>/ and every saved crasher in fuzz/regressions/<target>/ goes through
// the target's LLVMFuzzerTestOneInput (compiled into the test under another name). A
// regression comes back as a crash or sanitizer report here (scripts/test.sh --sanitize
// runs these under ASan + UBSan), or as a __builtin_trap in a target's own checks.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace fcabert::fuzz_replay {

using OneInput = int (*)(const uint8_t*, size_t);

// Runs every file of fuzz/corpus/<target> and fuzz/regressions/<target>; returns how many.
inline size_t replay(const std::string& target, OneInput one_input) {
  size_t count = 0;
  for (const char* folder : {"corpus", "regressions"}) {
    const std::filesystem::path dir = std::filesystem::path(FCABERT_SOURCE_DIR) / "fuzz" / folder / target;
    if (!std::filesystem::is_directory(dir)) continue;
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir))
      if (entry.is_regular_file() && entry.path().filename().string()[0] != '.')
        files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      SCOPED_TRACE(file.string());
      std::ifstream in(file, std::ios::binary);
      const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                       std::istreambuf_iterator<char>());
      one_input(bytes.data(), bytes.size());
      ++count;
    }
  }
  return count;
}

}  // namespace fcabert::fuzz_replay
