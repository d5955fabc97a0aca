#include <filesystem>
#include <iostream>

#include "fcabert/error.h"
#include "fcabert/input.h"

namespace fcabert {

LineReader::LineReader(std::vector<std::string> paths) : paths_(std::move(paths)) {
  if (paths_.empty()) paths_.push_back("-");
  for (const auto& path : paths_) {
    if (path == "-") continue;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec))
      throw Error(path +
                  ": no such file (or not a regular file); pass a text file with one example per line");
    bytes_total_ += std::filesystem::file_size(path, ec);
  }
}

bool LineReader::open_next() {
  if (next_path_ == paths_.size()) return false;
  const std::string& path = paths_[next_path_++];
  line_number_ = 0;
  if (path == "-") {
    file_.reset();
    in_ = &std::cin;
    source_ = "<stdin>";
    return true;
  }
  file_ = std::make_unique<std::ifstream>(path, std::ios::binary);
  if (!*file_) throw Error(path + ": cannot open for reading (check the permissions)");
  in_ = file_.get();
  source_ = path;
  return true;
}

bool LineReader::next(InputLine& line) {
  while (in_ == nullptr || !std::getline(*in_, line.text)) {
    if (in_ != nullptr && in_->bad())
      throw Error(source_ + ": read error after line " + std::to_string(line_number_));
    if (!open_next()) return false;
  }
  bytes_read_ += line.text.size() + 1;
  line.source = source_;
  line.number = ++line_number_;
  line.index = lines_read_++;
  return true;
}

}  // namespace fcabert
