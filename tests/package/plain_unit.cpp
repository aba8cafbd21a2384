// Compiled without the hepgnn::zlib component (no HEPGNN_HAVE_ZLIB) into a program that links it: the program's
// zlib, registered by another unit, serves this unit's reads too.
#include <hepgnn/io/gzip.hpp>

#include <string>

std::string read_in_plain_unit(const std::string& path);

std::string read_in_plain_unit(const std::string& path) { return hepgnn::read_text_file(path, "plain unit"); }
