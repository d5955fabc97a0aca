// A copy of a model file with a new FCA schedule in its metadata.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fcabert/calibrate.h"
#include "fcabert/error.h"
#include "fcabert/fca.h"
#include "fcabert/model_file.h"
#include "format/writer.h"
#include "io/output_file.h"

namespace fcabert::calibrate {

void write_model_with_schedule(const std::string& input, const std::string& output,
                               const FcaSchedule& schedule, const std::string& note, bool force) {
  namespace fs = std::filesystem;
  if (output.empty()) throw Error("--out is required: the model file to write");
  std::error_code error;
  if (fs::exists(output, error) && !force)
    throw Error(output + ": already exists; choose another --out or pass --force to replace it");
  if (fs::is_directory(output, error)) throw Error(output + ": is a folder; --out needs a file name");

  const ModelFile file = ModelFile::open(input);
  ModelInfo info = file.info();
  fca::validate_schedule(schedule, info.bert.num_layers);
  info.fca = schedule;
  info.format_version = 0;  // write the current version
  nlohmann::ordered_json provenance = nlohmann::ordered_json::parse(
      info.provenance_json.empty() ? "{}" : info.provenance_json, nullptr, false);
  if (!provenance.is_object()) provenance = nlohmann::ordered_json::object();
  nlohmann::ordered_json calibration =
      nlohmann::ordered_json::parse(note.empty() ? "{}" : note, nullptr, false);
  if (calibration.is_discarded()) throw Error("write_model_with_schedule: the note is not JSON: " + note);
  provenance["calibration"] = calibration;
  info.provenance_json = provenance.dump();

  // Every tensor as stored, the "_scale" tensors of I8 ones included: given an I8 tensor's
  // scales, the writer quantizes the dequantized values back to the same int8 codes, so the
  // copy's weights are the input's bit for bit.
  std::vector<TensorData> tensors;
  tensors.reserve(file.tensors().size());
  for (const TensorInfo& t : file.tensors())
    tensors.push_back(TensorData{t.name, t.shape, file.read_f32(t.name, t.shape), t.dtype});

  // Through the temporary of an OutputFile (removed on an error, and on SIGINT / SIGTERM when
  // the program opted in), read back before it replaces anything.
  OutputFile out(output);
  format::write_model(out.stream(), output, info, tensors);
  out.flush();
  ModelFile::open(out.temporary());
  out.commit();
}

}  // namespace fcabert::calibrate
