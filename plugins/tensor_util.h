// Helpers shared by the builtin plugins (numpy.so, csv.so, json.so):
// NumPy dtypes and Vineyard's names for them, and Vineyard's JSON-in-a-string
// fields. Header-only and internal to plugins/: each plugin compiles its own copy,
// and still depends on nothing of vineyardfs but the public plugin header.
#pragma once

#include <vineyardfs/plugin.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace vy_plugins {

// The daemon's host table, set by vy_plugin_register (each .so has its own copy).
inline const vy_host* host = nullptr;

struct DType {
  const char* descr;     // NumPy's dtype.str on a little-endian machine
  const char* vineyard;  // the typename argument Vineyard uses
  const char* numpy;     // dtype.name
};

inline const DType kTypes[] = {
    {"|b1", "bool", "bool"},           {"|i1", "int8", "int8"},
    {"|u1", "uint8", "uint8"},         {"<i2", "int16", "int16"},
    {"<u2", "uint16", "uint16"},       {"<i4", "int", "int32"},
    {"<u4", "uint32", "uint32"},       {"<i8", "int64", "int64"},
    {"<u8", "uint64", "uint64"},       {"<f2", "float16", "float16"},
    {"<f4", "float", "float32"},       {"<f8", "double", "float64"},
    {"<c8", "complex64", "complex64"}, {"<c16", "complex128", "complex128"},
};

// Other spellings of typename arguments (C++ and Vineyard's normalize_dtype).
inline const std::pair<const char*, const char*> kAliases[] = {
    {"int32", "<i4"},
    {"int32_t", "<i4"},
    {"i32", "<i4"},
    {"uint", "<u4"},
    {"uint32_t", "<u4"},
    {"u32", "<u4"},
    {"int64_t", "<i8"},
    {"long long", "<i8"},
    {"i64", "<i8"},
    {"uint64_t", "<u8"},
    {"u64", "<u8"},
    {"float32", "<f4"},
    {"float64", "<f8"},
    {"int8_t", "|i1"},
    {"uint8_t", "|u1"},
    {"int16_t", "<i2"},
    {"uint16_t", "<u2"},
    {"half", "<f2"},
    {"std::complex<float>", "<c8"},
    {"std::complex<double>", "<c16"},
};

// A dtype as a .npy descr: validated ([<|=] kind size) and normalised.
inline bool ParseDescr(const std::string& d, std::string* out, uint64_t* itemsize,
                       std::string* why) {
  if (d.size() < 3 || (d[0] != '<' && d[0] != '|' && d[0] != '=' && d[0] != '>')) {
    *why = "dtype '" + d + "' is not a simple NumPy dtype";
    return false;
  }
  char kind = d[1];
  char* end = nullptr;
  unsigned long size = std::strtoul(d.c_str() + 2, &end, 10);
  if (*end || size == 0 || size > (1u << 20)) {
    *why = "dtype '" + d + "' has no valid size";
    return false;
  }
  if (std::strchr("biufcUS", kind) == nullptr) {
    *why = "dtype '" + d + "' is not supported (kinds b, i, u, f, c, U, S are)";
    return false;
  }
  const uint64_t unit = kind == 'U' ? 4 : 1;
  if (d[0] == '>' && size * unit > 1) {
    *why = "big-endian dtype '" + d + "' is not supported";
    return false;
  }
  const bool single = size == 1 || kind == 'S' || kind == 'b';
  *out = std::string(1, single && kind != 'U' ? '|' : '<') + kind + std::to_string(size);
  *itemsize = size * unit;
  return true;
}

// The descr for a Vineyard typename argument or NumPy dtype name; "" if unknown.
inline std::string DescrOfName(const std::string& name) {
  for (auto& t : kTypes) {
    if (name == t.vineyard || name == t.numpy) return t.descr;
  }
  for (auto& a : kAliases) {
    if (name == a.first) return a.second;
  }
  return "";
}

// The typename argument and dtype name for a descr.
inline void NamesOf(const std::string& descr, uint64_t itemsize, std::string* vy, std::string* np) {
  for (auto& t : kTypes) {
    if (descr == t.descr) {
      *vy = t.vineyard;
      *np = t.numpy;
      return;
    }
  }
  // Fixed-width strings: NumPy names them by their size in bits.
  *np = std::string(descr[1] == 'U' ? "str" : "bytes") + std::to_string(itemsize * 8);
  *vy = *np;
}

inline std::string TemplateArg(const std::string& type_name) {
  size_t lt = type_name.find('<');
  if (lt == std::string::npos || type_name.back() != '>') return "";
  return type_name.substr(lt + 1, type_name.size() - lt - 2);
}

// JSON held in a string field is nested at most this deep (the daemon's own limit
// for metadata); deeper text stays a string, so no dump() or walk of it recurses
// as deep as its author chose.
constexpr int kMaxInnerJsonDepth = 64;

// Whether JSON text `s` nests no deeper than kMaxInnerJsonDepth (scanned outside
// strings, without recursion).
inline bool ShallowJson(const std::string& s) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxInnerJsonDepth) return false;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

// A field stored as a JSON string holding JSON (Vineyard's to_json), or as JSON.
// Never throws: parse errors leave the string as it is.
inline nlohmann::json JsonField(const vy_host* host, vy_call* call, const vy_object* obj,
                                const char* key) {
  size_t len = 0;
  const char* text = host->get_field(call, obj, key, &len);
  if (!text) return nullptr;
  auto j = nlohmann::json::parse(text, text + len, nullptr, false);
  if (j.is_string() && ShallowJson(j.get_ref<const std::string&>())) {
    auto inner = nlohmann::json::parse(j.get<std::string>(), nullptr, false);
    if (!inner.is_discarded()) return inner;
  }
  return j;
}

// The element type of a tensor-like object: value_type_meta_ (NumPy's dtype.str),
// else value_type_ (a dtype name), else the typename's template argument.
inline bool ElementType(const vy_host* host, vy_call* call, const vy_object* obj,
                        std::string* descr, uint64_t* itemsize) {
  std::string why, given;
  if (const char* meta = host->get_string(call, obj, "value_type_meta_", nullptr)) {
    given = meta;
  } else if (const char* name = host->get_string(call, obj, "value_type_", nullptr)) {
    given = DescrOfName(name);
  }
  if (given.empty()) given = DescrOfName(TemplateArg(obj->type_name));
  if (given.empty() || !ParseDescr(given, descr, itemsize, &why)) {
    host->set_error(call, "element type of %s is not a NumPy dtype%s%s", obj->type_name,
                    why.empty() ? "" : ": ", why.c_str());
    return false;
  }
  return true;
}

// "o" + 16 hex digits, as ids print.
inline std::string IdText(vy_id id) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "o%016llx", static_cast<unsigned long long>(id));
  return buf;
}

// Creates a metadata object from create-form JSON.
inline int CreateObject(vy_call* call, const nlohmann::ordered_json& meta, vy_id* out) {
  const std::string text = meta.dump();
  return host->create_object(call, text.data(), text.size(), out);
}

// Creates a vineyard::Tensor<T> in Vineyard's layout over the blob `buffer`, which
// holds the elements (`descr`, a normalised .npy descr) in C or Fortran order.
inline int CreateTensor(vy_call* call, const std::string& descr, uint64_t itemsize,
                        const std::vector<uint64_t>& dims, bool fortran, vy_id buffer,
                        uint64_t nbytes, vy_id* out) {
  std::string vy, np;
  NamesOf(descr, itemsize, &vy, &np);
  std::string shape = "[";  // Vineyard's to_json is Python's json.dumps: "[2, 3]"
  for (size_t i = 0; i < dims.size(); ++i) shape += (i ? ", " : "") + std::to_string(dims[i]);
  nlohmann::ordered_json meta = {
      {"typename", "vineyard::Tensor<" + vy + ">"},
      {"value_type_", np},
      {"value_type_meta_", descr},
      {"shape_", shape + "]"},
      {"partition_index_", "[]"},
      {"order_", fortran ? "\"F\"" : "\"C\""},
      {"nbytes", nbytes},
      {"buffer_", {{"id", IdText(buffer)}}},
  };
  return CreateObject(call, meta, out);
}

// Registers every resolver of `resolvers`; the first failure's errno.
template <size_t N>
int RegisterResolvers(vy_registry* reg, const vy_resolver (&resolvers)[N]) {
  for (auto& r : resolvers) {
    if (int rc = host->register_resolver(reg, &r)) return rc;
  }
  return 0;
}

// Callbacks wrapped for registration: an exception (nlohmann throws on invalid UTF-8, for one)
// becomes the call's error instead of crossing the C ABI.
template <int (*F)(void*, vy_call*, const vy_object*)>
int SafeResolve(void* arg, vy_call* call, const vy_object* obj) {
  try {
    return F(arg, call, obj);
  } catch (const std::exception& e) {
    host->set_error(call, "%s", e.what());
    return -EINVAL;
  }
}

template <int (*F)(void*, vy_call*, const vy_upload*, vy_id*)>
int SafeBuild(void* arg, vy_call* call, const vy_upload* up, vy_id* result) {
  try {
    return F(arg, call, up, result);
  } catch (const std::exception& e) {
    host->set_error(call, "%s", e.what());
    return -EINVAL;
  }
}

}  // namespace vy_plugins
