// The CSV parser of csv.so, apart from the plugin so that a fuzz target
// (fuzz/csv_fuzzer.cc) runs it without a mount. Header-only, internal to plugins/.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace vy_plugins {

// A string column is padded to its widest cell (4 bytes a character, NumPy's <U n):
// one long cell in a long file would make it huge. Past this many bytes the file is
// refused rather than the daemon's memory exhausted.
constexpr uint64_t kMaxCsvStringColumnBytes = uint64_t{256} << 20;

using CsvRows = std::vector<std::vector<std::string>>;

// Splits RFC 4180 text into records; false (with *why) on an unterminated quote.
inline bool ParseCsv(const char* p, size_t n, std::vector<std::vector<std::string>>* rows,
                     std::string* why) {
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, any = false;
  size_t line = 1;
  for (size_t i = 0; i < n; ++i) {
    char c = p[i];
    if (quoted) {
      if (c == '"' && i + 1 < n && p[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    if (c == '"' && field.empty()) {
      quoted = any = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
      any = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < n && p[i + 1] == '\n') ++i;
      if (any || !field.empty()) {
        row.push_back(std::move(field));
        rows->push_back(std::move(row));
      }
      row.clear();
      field.clear();
      any = false;
      ++line;
    } else {
      field += c;
      any = true;
    }
  }
  if (quoted) {
    *why = "unterminated quoted field (from line " + std::to_string(line) + ")";
    return false;
  }
  if (any || !field.empty()) {
    row.push_back(std::move(field));
    rows->push_back(std::move(row));
  }
  return true;
}

inline bool IsInt(const std::string& s, int64_t* v) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), *v);
  return !s.empty() && r.ec == std::errc() && r.ptr == s.data() + s.size();
}

inline bool IsDouble(const std::string& s, double* v) {
  if (s.empty()) {
    *v = std::nan("");
    return true;
  }
  char* end = nullptr;
  *v = std::strtod(s.c_str(), &end);
  return *end == '\0' && s.front() != ' ';
}

inline std::vector<uint32_t> Ucs4(const std::string& s) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int extra = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
    uint32_t ch = extra ? c & (0x3f >> extra) : c;
    for (int k = 1; k <= extra && i + k < s.size(); ++k) {
      ch = (ch << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
    }
    out.push_back(ch);
    i += 1 + extra;
  }
  return out;
}

// Checks the parsed records: a header row, and as many fields in every record.
inline bool CheckCsvShape(const CsvRows& rows, std::string* why) {
  if (rows.empty()) {
    *why = "empty file: a CSV needs a header row";
    return false;
  }
  const size_t ncols = rows[0].size();
  for (size_t r = 1; r < rows.size(); ++r) {
    if (rows[r].size() != ncols) {
      *why = "record " + std::to_string(r + 1) + " has " + std::to_string(rows[r].size()) +
             " fields, the header has " + std::to_string(ncols);
      return false;
    }
  }
  return true;
}

// Column `c` of `rows` (row 0 is the header), typed by its cells: its NumPy dtype
// in *descr and its array bytes in *bytes; false (with *why) if too large.
inline bool CsvColumn(const CsvRows& rows, size_t c, std::string* descr, std::string* bytes,
                      std::string* why) {
  const size_t n = rows.size() - 1;
  bool ints = n > 0, doubles = true, bools = n > 0;
  size_t width = 1;
  for (size_t r = 1; r <= n; ++r) {
    const std::string& s = rows[r][c];
    int64_t iv;
    double dv;
    ints = ints && IsInt(s, &iv);
    doubles = doubles && IsDouble(s, &dv);
    bools = bools && (s == "True" || s == "False" || s == "true" || s == "false");
    width = std::max(width, Ucs4(s).size());
  }
  if (ints) {
    *descr = "<i8";
    for (size_t r = 1; r <= n; ++r) {
      int64_t v;
      IsInt(rows[r][c], &v);
      bytes->append(reinterpret_cast<const char*>(&v), sizeof v);
    }
  } else if (bools) {
    *descr = "|b1";
    for (size_t r = 1; r <= n; ++r)
      *bytes += static_cast<char>(rows[r][c][0] == 'T' || rows[r][c][0] == 't');
  } else if (doubles) {
    *descr = "<f8";
    for (size_t r = 1; r <= n; ++r) {
      double v;
      IsDouble(rows[r][c], &v);
      bytes->append(reinterpret_cast<const char*>(&v), sizeof v);
    }
  } else {
    if (uint64_t{n} * width * 4 > kMaxCsvStringColumnBytes) {
      *why = "column " + std::to_string(c) + " would take " +
             std::to_string(uint64_t{n} * width * 4) + " bytes as strings of " +
             std::to_string(width) + " characters, over " +
             std::to_string(kMaxCsvStringColumnBytes);
      return false;
    }
    *descr = "<U" + std::to_string(width);
    for (size_t r = 1; r <= n; ++r) {
      std::vector<uint32_t> u = Ucs4(rows[r][c]);
      u.resize(width, 0);
      bytes->append(reinterpret_cast<const char*>(u.data()), u.size() * 4);
    }
  }
  return true;
}

}  // namespace vy_plugins
