#include "cli/default_model.h"

#include <cstdlib>
#include <filesystem>

namespace fcabert::cli {
namespace {

constexpr const char* kDefaultModelFile = "sst2-minilm-l6.fcab";

// The folder of the running executable (Linux: /proc/self/exe); empty if it cannot be read.
std::filesystem::path executable_dir() {
  std::error_code error;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? std::filesystem::path() : exe.parent_path();
}

}  // namespace

std::string default_model_path() {
  if (const char* env = std::getenv("FCABERT_DEFAULT_MODEL"); env && *env) return env;
  // Relative to the executable, so that an installed (or moved) prefix works from any
  // directory: PREFIX/bin/fcabert -> PREFIX/share/fcabert/models/ (cmake --install), and
  // build/fcabert -> build/share/fcabert/models/ (a link to models/ made by CMake). Both
  // executables, fcabert and fcabert-bench, sit in the same bin/ (or build/) folder.
  const std::filesystem::path dir = executable_dir();
  const std::filesystem::path installed = dir / ".." / "share" / "fcabert" / "models" / kDefaultModelFile;
  const std::filesystem::path build_tree = dir / "share" / "fcabert" / "models" / kDefaultModelFile;
  std::error_code error;
  for (const auto& candidate : {installed, build_tree}) {
    // canonical: reports and --help name the file itself, not the build tree's link to it.
    if (!std::filesystem::is_regular_file(candidate, error)) continue;
    const std::filesystem::path file = std::filesystem::canonical(candidate, error);
    return (error ? candidate.lexically_normal() : file).string();
  }
  // Neither is there: name the installed location, so that the load error says where the
  // model was expected.
  return installed.lexically_normal().string();
}

}  // namespace fcabert::cli
