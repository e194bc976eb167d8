// csv.so: vineyard::DataFrame <-> CSV.
//
// Resolver: vineyard::DataFrame -> dataframe.csv, a header row of the column names
// (__values_-key-<i>) and one row per index position, read from each column's
// Tensor (__values_-value-<i>, Vineyard's layout). Columns may hold bool, integers,
// float32/64 and fixed-width strings; NaN is written as an empty field, floats in
// their shortest exact form. The index (index_) is not written.
//
// Builder: a *.csv file with a header row dropped into new/ becomes a DataFrame
// whose columns are 1-D Tensors. Each column's type is inferred from its cells:
// int64 if every cell is an integer, double if every cell is a number or empty
// (NaN), bool if every cell is True/False, else a fixed-width string (<U n).
// Fields follow RFC 4180 (quotes, doubled quotes, CRLF).
#include <vineyardfs/plugin.h>

#include <charconv>
#include <cmath>
#include <string>
#include <vector>

#include "csv_parse.h"
#include "tensor_util.h"

namespace {

using namespace vy_plugins;

// ---- writing CSV ----

void AppendField(std::string* out, const std::string& f) {
  if (f.find_first_of(",\"\r\n") == std::string::npos &&
      (f.empty() || (f.front() != ' ' && f.back() != ' '))) {
    *out += f;
    return;
  }
  *out += '"';
  for (char c : f) {
    if (c == '"') *out += '"';
    *out += c;
  }
  *out += '"';
}

void AppendUtf8(std::string* out, uint32_t c) {
  if (c < 0x80) {
    *out += static_cast<char>(c);
  } else if (c < 0x800) {
    *out += static_cast<char>(0xc0 | (c >> 6));
    *out += static_cast<char>(0x80 | (c & 0x3f));
  } else if (c < 0x10000) {
    *out += static_cast<char>(0xe0 | (c >> 12));
    *out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
    *out += static_cast<char>(0x80 | (c & 0x3f));
  } else {
    *out += static_cast<char>(0xf0 | (c >> 18));
    *out += static_cast<char>(0x80 | ((c >> 12) & 0x3f));
    *out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
    *out += static_cast<char>(0x80 | (c & 0x3f));
  }
}

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <typename F>
std::string Float(F v) {
  if (std::isnan(v)) return "";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

struct Column {
  std::string name, descr;
  uint64_t itemsize = 0, length = 0;
  const uint8_t* data = nullptr;
};

// One cell as text; false if the dtype cannot be written as CSV.
bool Cell(const Column& c, uint64_t row, std::string* out) {
  const uint8_t* p = c.data + row * c.itemsize;
  const char kind = c.descr[1];
  switch (kind) {
    case 'b':
      *out = *p ? "True" : "False";
      return true;
    case 'i':
      *out = c.itemsize == 1   ? std::to_string(Load<int8_t>(p))
             : c.itemsize == 2 ? std::to_string(Load<int16_t>(p))
             : c.itemsize == 4 ? std::to_string(Load<int32_t>(p))
                               : std::to_string(Load<int64_t>(p));
      return true;
    case 'u':
      *out = c.itemsize == 1   ? std::to_string(Load<uint8_t>(p))
             : c.itemsize == 2 ? std::to_string(Load<uint16_t>(p))
             : c.itemsize == 4 ? std::to_string(Load<uint32_t>(p))
                               : std::to_string(Load<uint64_t>(p));
      return true;
    case 'f':
      if (c.itemsize == 4) *out = Float(Load<float>(p));
      if (c.itemsize == 8) *out = Float(Load<double>(p));
      return c.itemsize == 4 || c.itemsize == 8;
    case 'U':
      out->clear();
      for (uint64_t i = 0; i < c.itemsize / 4; ++i) {
        uint32_t ch = Load<uint32_t>(p + 4 * i);
        if (ch == 0) break;
        AppendUtf8(out, ch);
      }
      return true;
    case 'S':
      out->assign(reinterpret_cast<const char*>(p),
                  strnlen(reinterpret_cast<const char*>(p), c.itemsize));
      return true;
    default:
      return false;
  }
}

int ResolveDataFrame(void*, vy_call* call, const vy_object* obj) {
  int64_t n = 0;
  if (host->get_int(call, obj, "__values_-size", &n) != 0 || n < 0) {
    host->set_error(call, "__values_-size is missing or not a count");
    return -EINVAL;
  }
  std::vector<Column> cols;
  for (int64_t i = 0; i < n; ++i) {
    const std::string key = "__values_-key-" + std::to_string(i);
    const std::string value = "__values_-value-" + std::to_string(i);
    Column c;
    nlohmann::json name = JsonField(host, call, obj, key.c_str());
    c.name = name.is_string() ? name.get<std::string>() : name.dump();
    vy_object col, buffer;
    if (host->get_member(call, obj, value.c_str(), &col) != 0) {
      host->set_error(call, "column %lld (%s) is missing", static_cast<long long>(i),
                      value.c_str());
      return -EINVAL;
    }
    if (!ElementType(host, call, &col, &c.descr, &c.itemsize)) return -EINVAL;
    nlohmann::json shape = JsonField(host, call, &col, "shape_");
    if (!shape.is_array() || shape.size() != 1 || !shape[0].is_number_unsigned()) {
      host->set_error(call, "column %s is not a 1-D tensor", c.name.c_str());
      return -EINVAL;
    }
    c.length = shape[0].get<uint64_t>();
    uint64_t size = 0;
    if (c.length > 0) {
      if (host->get_member(call, &col, "buffer_", &buffer) != 0 ||
          host->map_blob(call, buffer.id, &c.data, &size) != 0 || size / c.itemsize < c.length) {
        host->set_error(call, "column %s: its buffer_ is missing or too short", c.name.c_str());
        return -EINVAL;
      }
    }
    if (!cols.empty() && c.length != cols[0].length) {
      host->set_error(call, "column %s has %llu rows, column %s has %llu", c.name.c_str(),
                      static_cast<unsigned long long>(c.length), cols[0].name.c_str(),
                      static_cast<unsigned long long>(cols[0].length));
      return -EINVAL;
    }
    cols.push_back(c);
  }
  std::string out, cell;
  for (size_t i = 0; i < cols.size(); ++i) {
    if (i) out += ',';
    AppendField(&out, cols[i].name);
  }
  out += '\n';
  const uint64_t rows = cols.empty() ? 0 : cols[0].length;
  for (uint64_t r = 0; r < rows; ++r) {
    for (size_t i = 0; i < cols.size(); ++i) {
      if (i) out += ',';
      if (!Cell(cols[i], r, &cell)) {
        host->set_error(call, "column %s has dtype %s, which CSV cannot show", cols[i].name.c_str(),
                        cols[i].descr.c_str());
        return -EINVAL;
      }
      AppendField(&out, cell);
    }
    out += '\n';
  }
  return host->add_bytes(call, out.data(), out.size());
}

// Builds column `c` of `rows` (row 0 is the header) into a Tensor.
int BuildColumn(vy_call* call, const CsvRows& rows, size_t c, vy_id* out) {
  std::string bytes, descr, why;
  if (!CsvColumn(rows, c, &descr, &bytes, &why)) {
    host->set_error(call, "%s", why.c_str());
    return -EINVAL;
  }
  vy_id buffer;
  if (int rc = host->create_blob(call, bytes.data(), bytes.size(), &buffer)) return rc;
  std::string normal;
  uint64_t itemsize;
  ParseDescr(descr, &normal, &itemsize, &why);
  return CreateTensor(call, normal, itemsize, {rows.size() - 1}, false, buffer, bytes.size(), out);
}

int BuildCsv(void*, vy_call* call, const vy_upload* up, vy_id* result) {
  CsvRows rows;
  std::string why;
  if (!ParseCsv(reinterpret_cast<const char*>(up->data), up->size, &rows, &why) ||
      !CheckCsvShape(rows, &why)) {
    host->set_error(call, "%s", why.c_str());
    return -EINVAL;
  }
  const size_t ncols = rows[0].size();
  nlohmann::ordered_json df = {{"typename", "vineyard::DataFrame"}};
  std::string columns = "[";
  uint64_t nbytes = 0;
  for (size_t c = 0; c < ncols; ++c) {
    vy_id col;
    if (int rc = BuildColumn(call, rows, c, &col)) return rc;
    vy_object o;
    if (host->get_object(call, col, &o) == 0) nbytes += o.nbytes;
    const std::string key = nlohmann::json(rows[0][c]).dump();
    columns += (c ? ", " : "") + key;
    df["__values_-key-" + std::to_string(c)] = key;
    df["__values_-value-" + std::to_string(c)] = {{"id", IdText(col)}};
  }
  df["columns_"] = columns + "]";
  df["__values_-size"] = ncols;
  df["partition_index_row_"] = -1;
  df["partition_index_column_"] = -1;
  df["row_batch_index_"] = 0;
  df["nbytes"] = nbytes;
  return CreateObject(call, df, result);
}

}  // namespace

extern "C" {

VY_PLUGIN_ABI;

int vy_plugin_register(const vy_host* h, vy_registry* reg) {
  vy_plugins::host = h;
  const vy_resolver df = {"vineyard::DataFrame", "dataframe.csv", SafeResolve<ResolveDataFrame>,
                          nullptr};
  if (int rc = h->register_resolver(reg, &df)) return rc;
  const vy_builder csv = {"csv", ".csv", nullptr, 0, SafeBuild<BuildCsv>, nullptr};
  return h->register_builder(reg, &csv);
}

}  // extern "C"
