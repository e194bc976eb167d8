// The .npy parser of numpy.so, apart from the plugin so that a fuzz target
// (fuzz/npy_fuzzer.cc) runs it without a mount. Header-only, internal to plugins/.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tensor_util.h"

namespace vy_plugins {

// What a .npy file holds: its element type, shape and order, and where its array
// bytes are.
struct NpyLayout {
  std::string descr;  // NumPy's dtype.str, normalized (ParseDescr)
  uint64_t itemsize = 0;
  std::vector<uint64_t> dims;
  bool fortran = false;
  uint64_t start = 0;  // offset of the array bytes
  uint64_t bytes = 0;  // their length: exactly the rest of the file
};

// The value of key `key` in the header dict ("'descr': '<f8', ..."), raw text.
inline bool DictValue(const std::string& dict, const std::string& key, std::string* out) {
  size_t k = dict.find("'" + key + "'");
  if (k == std::string::npos) return false;
  size_t colon = dict.find(':', k);
  if (colon == std::string::npos) return false;
  size_t v = dict.find_first_not_of(' ', colon + 1);
  if (v == std::string::npos) return false;
  size_t end;
  if (dict[v] == '\'') {
    end = dict.find('\'', v + 1);
    if (end == std::string::npos) return false;
    *out = dict.substr(v + 1, end - v - 1);
  } else if (dict[v] == '(') {
    end = dict.find(')', v);
    if (end == std::string::npos) return false;
    *out = dict.substr(v, end - v + 1);
  } else {
    end = dict.find_first_of(",}", v);
    if (end == std::string::npos) return false;
    *out = dict.substr(v, end - v);
    while (!out->empty() && out->back() == ' ') out->pop_back();
  }
  return true;
}

// Parses the .npy file `p` of `size` bytes; false with the reason in *why.
inline bool ParseNpy(const uint8_t* p, uint64_t size, NpyLayout* out, std::string* why) {
  if (size < 10 || std::memcmp(p, "\x93NUMPY", 6) != 0) {
    *why = "not a .npy file: no \\x93NUMPY magic";
    return false;
  }
  const int major = p[6];
  uint64_t hlen, prefix;
  if (major == 1) {
    hlen = p[8] | (uint64_t{p[9]} << 8);
    prefix = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) {
      *why = "truncated .npy: the header length is cut off";
      return false;
    }
    hlen = p[8] | (uint64_t{p[9]} << 8) | (uint64_t{p[10]} << 16) | (uint64_t{p[11]} << 24);
    prefix = 12;
  } else {
    *why = ".npy format version " + std::to_string(major) + " is not supported";
    return false;
  }
  if (prefix + hlen > size) {
    *why = "truncated .npy: the header says " + std::to_string(prefix + hlen) +
           " bytes, the file has " + std::to_string(size);
    return false;
  }
  const std::string dict(reinterpret_cast<const char*>(p + prefix), hlen);
  std::string descr_text, fortran_text, shape_text;
  if (!DictValue(dict, "descr", &descr_text) || !DictValue(dict, "fortran_order", &fortran_text) ||
      !DictValue(dict, "shape", &shape_text)) {
    *why =
        "the .npy header lacks descr, fortran_order or shape (or the dtype is "
        "structured, which is not supported)";
    return false;
  }
  if (!ParseDescr(descr_text, &out->descr, &out->itemsize, why)) return false;
  if (fortran_text != "True" && fortran_text != "False") {
    *why = "fortran_order is " + fortran_text + ", not True or False";
    return false;
  }
  out->fortran = fortran_text == "True";
  uint64_t count = 1;
  for (size_t i = 1; i < shape_text.size();) {
    size_t j = shape_text.find_first_of(",)", i);
    std::string num = shape_text.substr(i, j - i);
    num.erase(0, num.find_first_not_of(' '));
    while (!num.empty() && (num.back() == ' ' || num.back() == 'L')) num.pop_back();
    if (!num.empty()) {
      char* end = nullptr;
      unsigned long long d = std::strtoull(num.c_str(), &end, 10);
      if (*end || num[0] == '-') {
        *why = "shape " + shape_text + " is not a tuple of sizes";
        return false;
      }
      if (d && count > UINT64_MAX / d / out->itemsize) {
        *why = "shape " + shape_text + " overflows";
        return false;
      }
      out->dims.push_back(d);
      count *= d;
    }
    if (j == std::string::npos || shape_text[j] == ')') break;
    i = j + 1;
  }
  const uint64_t bytes = count * out->itemsize, start = prefix + hlen;
  if (size - start != bytes) {
    *why = std::string(size - start < bytes ? "truncated" : "overlong") +
           " .npy: the header promises " + std::to_string(bytes) + " bytes of data, the file has " +
           std::to_string(size - start);
    return false;
  }
  out->start = start;
  out->bytes = bytes;
  return true;
}

}  // namespace vy_plugins
