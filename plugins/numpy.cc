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

#include "npy_parse.h"
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

int BuildNpy(void*, vy_call* call, const vy_upload* up, vy_id* result) {
  NpyLayout npy;
  std::string why;
  if (!ParseNpy(up->data, up->size, &npy, &why)) {
    host->set_error(call, "%s", why.c_str());
    return -EINVAL;
  }
  vy_id buffer;
  int rc = host->create_blob_from_upload(call, npy.start, npy.bytes, &buffer);
  if (rc) return rc;
  return CreateTensor(call, npy.descr, npy.itemsize, npy.dims, npy.fortran, buffer, npy.bytes,
                      result);
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
