// fcabert::Precision names (include/fcabert/precision.h).
#include "fcabert/precision.h"

#include "fcabert/error.h"

namespace fcabert {

const char* precision_name(Precision precision) {
  switch (precision) {
    case Precision::kBf16:
      return "bf16";
    case Precision::kInt8:
      return "int8";
    case Precision::kAuto:
      return "auto";
    case Precision::kFp32:
      break;
  }
  return "fp32";
}

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::kFp32;
  if (name == "bf16") return Precision::kBf16;
  if (name == "int8") return Precision::kInt8;
  if (name == "auto") return Precision::kAuto;
  throw Error("unknown precision \"" + name + "\": use fp32, bf16, int8 or auto");
}

}  // namespace fcabert
