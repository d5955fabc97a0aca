#pragma once
// Where the bundled default model is, for the -m/--model default of both executables
// (fcabert and fcabert-bench).
#include <string>

namespace fcabert::cli {

// The bundled default model, found relative to the running executable (PREFIX/share/fcabert/
// models/sst2-minilm-l6.fcab when installed, build/share/fcabert/models/ in the build tree), or
// the FCABERT_DEFAULT_MODEL environment variable when set.
std::string default_model_path();

}  // namespace fcabert::cli
