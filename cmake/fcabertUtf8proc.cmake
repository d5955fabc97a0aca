# utf8proc (Debian's libutf8proc-dev) ships no CMake package: find it and wrap it as the
# imported target fcabert::utf8proc. Included by the build and by the installed
# fcabertConfig.cmake, so that the exported fcabert::fcabert can name it.
if(NOT TARGET fcabert::utf8proc)
  find_path(FCABERT_UTF8PROC_INCLUDE_DIR utf8proc.h)
  find_library(FCABERT_UTF8PROC_LIBRARY utf8proc)
  if(NOT FCABERT_UTF8PROC_INCLUDE_DIR OR NOT FCABERT_UTF8PROC_LIBRARY)
    message(FATAL_ERROR "fcabert needs utf8proc (utf8proc.h and libutf8proc): on Debian, apt-get install libutf8proc-dev")
  endif()
  add_library(fcabert::utf8proc UNKNOWN IMPORTED)
  set_target_properties(fcabert::utf8proc PROPERTIES
    IMPORTED_LOCATION "${FCABERT_UTF8PROC_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${FCABERT_UTF8PROC_INCLUDE_DIR}")
endif()
