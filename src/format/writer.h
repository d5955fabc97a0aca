#pragma once
// The model-file writer on a stream, for writers that own the file themselves (a calibrated
// copy goes through an OutputFile: temporary, read back, renamed). write_model_file
// (include/fcabert/model_file.h) is this on a plain file.
#include <ostream>
#include <string>
#include <vector>

#include "fcabert/model_file.h"

namespace fcabert::format {

// Writes the model file's bytes to `out` (which must be binary); `name` names the file in
// errors. Checks what write_model_file checks (values.size() == numel, unique names, the I8
// rules) and quantizes the I8 tensors before the first byte is written. Throws fcabert::Error; the stream's
// state tells write errors.
void write_model(std::ostream& out, const std::string& name, const ModelInfo& info,
                 const std::vector<TensorData>& tensors);

}  // namespace fcabert::format
