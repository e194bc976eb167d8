// Test helpers shared by the plugin tests with and without a mount: the bytes of a
// .npy file and of packed numbers.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>

namespace vytest {

// A .npy file: v1 header for `descr` and `shape` ("(4,)"), then `data`.
inline std::string Npy(const std::string& descr, const std::string& shape,
                       const std::string& data) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  while ((10 + dict.size() + 1) % 64) dict += ' ';
  dict += '\n';
  std::string out = "\x93NUMPY\x01";
  out += '\0';
  out += static_cast<char>(dict.size() & 0xff);
  out += static_cast<char>(dict.size() >> 8);
  return out + dict + data;
}

// The native bytes of `v`.
template <typename T>
std::string Packed(std::initializer_list<T> v) {
  std::string s;
  for (T d : v) s.append(reinterpret_cast<const char*>(&d), sizeof d);
  return s;
}
inline std::string Doubles(std::initializer_list<double> v) { return Packed<double>(v); }
inline std::string Int64s(std::initializer_list<int64_t> v) { return Packed<int64_t>(v); }

}  // namespace vytest
