// numpy.so: Vineyard's tensors and arrays <-> NumPy's .npy format.
//
// Resolvers (view files):
//   vineyard::Tensor<T>       -> tensor.npy  (any shape; C or Fortran order, from order_)
//   vineyard::NumericArray<T> -> array.npy   (1-D: length_ values from offset_)
//   vineyard::Array<T>        -> array.npy   (1-D: size_ values)
// Each view is a generated .npy header followed by a range of the buffer_ blob: the
// array bytes are never copied.
//
// Builder: a *.npy file (or one starting with "\x93NUMPY") dropped into new/ becomes
// a vineyard::Tensor<T> with Vineyard's layout (value_type_, value_type_meta_,
// shape_ and order_ as JSON strings, partition_index_, a buffer_ blob holding the
// array bytes as stored in the file). A Fortran-order file keeps its bytes in
// Fortran order with order_ "F" (Vineyard's Python builder would first copy it to C
// order; keeping the bytes lets the build and the view stay copy-free).
//
// Element types: bool, int8/16/32/64, uint8/16/32/64, float16/32/64, complex64/128,
// and fixed-width strings ('U', 'S'). Typename arguments use Vineyard's names
// (int32 -> int, float32 -> float, float64 -> double, others as NumPy names them).
#include <vineyardfs/plugin.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tensor_util.h"

namespace {

using namespace vy_plugins;

std::string NpyHeader(const std::string& descr, bool fortran, const std::vector<uint64_t>& shape) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
                     ", 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i) {
    dict += std::to_string(shape[i]);
    if (shape.size() == 1 || i + 1 < shape.size()) dict += i + 1 < shape.size() ? ", " : ",";
  }
  dict += "), }";
  // Pad with spaces so that magic + version + length + dict + '\n' is a multiple of 64.
  size_t prefix = dict.size() + 1 + 10 > 65535 ? 12 : 10;
  size_t total = (prefix + dict.size() + 1 + 63) / 64 * 64;
  dict.append(total - prefix - dict.size() - 1, ' ');
  dict += '\n';
  std::string out = "\x93NUMPY";
  const uint32_t hlen = static_cast<uint32_t>(dict.size());
  if (prefix == 10) {
    out += '\x01';
    out += '\x00';
    out += static_cast<char>(hlen & 0xff);
    out += static_cast<char>(hlen >> 8);
  } else {
    out += '\x02';
    out += '\x00';
    for (int i = 0; i < 4; ++i) out += static_cast<char>((hlen >> (8 * i)) & 0xff);
  }
  return out + dict;
}

// Emits header + the buffer_ blob's bytes [offset, offset + count * itemsize).
int EmitNpy(vy_call* call, const vy_object* obj, const std::string& descr, uint64_t itemsize,
            bool fortran, const std::vector<uint64_t>& shape, uint64_t offset_items) {
  uint64_t count = 1;
  for (uint64_t d : shape) {
    if (d && count > UINT64_MAX / d) {
      host->set_error(call, "shape overflows");
      return -EINVAL;
    }
    count *= d;
  }
  const uint64_t bytes = count * itemsize;
  std::string head = NpyHeader(descr, fortran, shape);
  int rc = host->add_bytes(call, head.data(), head.size());
  if (rc || bytes == 0) return rc;
  vy_object buffer;
  if (host->get_member(call, obj, "buffer_", &buffer) != 0 || !buffer.is_blob) {
    host->set_error(call, "member buffer_ is missing or not a blob");
    return -EINVAL;
  }
  const uint64_t from = offset_items * itemsize;
  if (from > buffer.size || bytes > buffer.size - from) {
    host->set_error(call, "buffer_ holds %llu bytes; the array needs %llu from byte %llu",
                    static_cast<unsigned long long>(buffer.size),
                    static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(from));
    return -EINVAL;
  }
  return host->add_blob_range(call, buffer.id, from, bytes);
}

int ResolveTensor(void*, vy_call* call, const vy_object* obj) {
  std::string descr;
  uint64_t itemsize;
  if (!ElementType(host, call, obj, &descr, &itemsize)) return -EINVAL;
  nlohmann::json shape = JsonField(host, call, obj, "shape_");
  if (!shape.is_array()) {
    host->set_error(call, "shape_ is missing or not a list");
    return -EINVAL;
  }
  std::vector<uint64_t> dims;
  for (auto& d : shape) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0) {
      host->set_error(call, "shape_ holds %s, not a size", d.dump().c_str());
      return -EINVAL;
    }
    dims.push_back(d.get<uint64_t>());
  }
  nlohmann::json order = JsonField(host, call, obj, "order_");
  bool fortran = order.is_string() && order.get<std::string>() == "F";
  return EmitNpy(call, obj, descr, itemsize, fortran, dims, 0);
}

int ResolveArray(void*, vy_call* call, const vy_object* obj) {
  std::string descr;
  uint64_t itemsize;
  if (!ElementType(host, call, obj, &descr, &itemsize)) return -EINVAL;
  int64_t length = 0, offset = 0;
  // NumericArray: length_ (and offset_); Array: size_.
  if (host->get_int(call, obj, "length_", &length) != 0 &&
      host->get_int(call, obj, "size_", &length) != 0) {
    host->set_error(call, "neither length_ nor size_ says how many values there are");
    return -EINVAL;
  }
  if (host->get_int(call, obj, "offset_", &offset) == -EINVAL || offset < 0 || length < 0) {
    host->set_error(call, "offset_ or length_ is not a valid count");
    return -EINVAL;
  }
  return EmitNpy(call, obj, descr, itemsize, false, {static_cast<uint64_t>(length)},
                 static_cast<uint64_t>(offset));
}

// ---- the builder ----

// The value of key `key` in the header dict ("'descr': '<f8', ..."), raw text.
bool DictValue(const std::string& dict, const std::string& key, std::string* out) {
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

int BuildNpy(void*, vy_call* call, const vy_upload* up, vy_id* result) {
  const uint8_t* p = up->data;
  if (up->size < 10 || std::memcmp(p, "\x93NUMPY", 6) != 0) {
    host->set_error(call, "not a .npy file: no \\x93NUMPY magic");
    return -EINVAL;
  }
  const int major = p[6];
  uint64_t hlen, prefix;
  if (major == 1) {
    hlen = p[8] | (uint64_t{p[9]} << 8);
    prefix = 10;
  } else if (major == 2 || major == 3) {
    if (up->size < 12) {
      host->set_error(call, "truncated .npy: the header length is cut off");
      return -EINVAL;
    }
    hlen = p[8] | (uint64_t{p[9]} << 8) | (uint64_t{p[10]} << 16) | (uint64_t{p[11]} << 24);
    prefix = 12;
  } else {
    host->set_error(call, ".npy format version %d is not supported", major);
    return -EINVAL;
  }
  if (prefix + hlen > up->size) {
    host->set_error(call, "truncated .npy: the header says %llu bytes, the file has %llu",
                    static_cast<unsigned long long>(prefix + hlen),
                    static_cast<unsigned long long>(up->size));
    return -EINVAL;
  }
  const std::string dict(reinterpret_cast<const char*>(p + prefix), hlen);
  std::string descr_text, fortran_text, shape_text, descr, why;
  uint64_t itemsize;
  if (!DictValue(dict, "descr", &descr_text) || !DictValue(dict, "fortran_order", &fortran_text) ||
      !DictValue(dict, "shape", &shape_text)) {
    host->set_error(call,
                    "the .npy header lacks descr, fortran_order or shape (or the dtype is "
                    "structured, which is not supported)");
    return -EINVAL;
  }
  if (!ParseDescr(descr_text, &descr, &itemsize, &why)) {
    host->set_error(call, "%s", why.c_str());
    return -EINVAL;
  }
  if (fortran_text != "True" && fortran_text != "False") {
    host->set_error(call, "fortran_order is %s, not True or False", fortran_text.c_str());
    return -EINVAL;
  }
  std::vector<uint64_t> dims;
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
        host->set_error(call, "shape %s is not a tuple of sizes", shape_text.c_str());
        return -EINVAL;
      }
      if (d && count > UINT64_MAX / d / itemsize) {
        host->set_error(call, "shape %s overflows", shape_text.c_str());
        return -EINVAL;
      }
      dims.push_back(d);
      count *= d;
    }
    if (j == std::string::npos || shape_text[j] == ')') break;
    i = j + 1;
  }
  const uint64_t bytes = count * itemsize, start = prefix + hlen;
  if (up->size - start != bytes) {
    host->set_error(call, "%s .npy: the header promises %llu bytes of data, the file has %llu",
                    up->size - start < bytes ? "truncated" : "overlong",
                    static_cast<unsigned long long>(bytes),
                    static_cast<unsigned long long>(up->size - start));
    return -EINVAL;
  }
  vy_id buffer;
  int rc = host->create_blob_from_upload(call, start, bytes, &buffer);
  if (rc) return rc;
  return CreateTensor(call, descr, itemsize, dims, fortran_text == "True", buffer, bytes, result);
}

}  // namespace

extern "C" {

VY_PLUGIN_ABI;

int vy_plugin_register(const vy_host* h, vy_registry* reg) {
  vy_plugins::host = h;
  const vy_resolver resolvers[] = {
      {"vineyard::Tensor", "tensor.npy", SafeResolve<ResolveTensor>, nullptr},
      {"vineyard::NumericArray", "array.npy", SafeResolve<ResolveArray>, nullptr},
      {"vineyard::Array", "array.npy", SafeResolve<ResolveArray>, nullptr},
  };
  if (int rc = RegisterResolvers(reg, resolvers)) return rc;
  const vy_builder npy = {"npy", ".npy", "\x93NUMPY", 6, SafeBuild<BuildNpy>, nullptr};
  return h->register_builder(reg, &npy);
}

}  // extern "C"
