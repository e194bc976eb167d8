// arrow_build.cc: arrow.so's builder, an Arrow IPC file or stream in new/ -> a
// vineyard::DataFrame, or a vineyard::Table of RecordBatches (see arrow.cc's header
// comment for which). The parser (arrow_ipc.cc) has validated every range first, so
// nothing is created for a malformed file; a failure after that (the arena full) is
// undone by the host, which deletes every object the call created.
#include <vineyardfs/plugin.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "arrow_ipc.h"
#include "tensor_util.h"

namespace {

using namespace vy_plugins;
namespace va = vy_arrow;

// Bytes of UCS-4 one string column may grow to as a NumPy '<U n' Tensor (widest
// value x rows x 4); larger columns go into a Table, which keeps Arrow's layout.
constexpr uint64_t kMaxUnicodeTensorBytes = uint64_t{1} << 30;

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

const char* const kUnits[] = {"s", "ms", "us", "ns"};

// The NumPy descr a column becomes in a DataFrame ("" for variable-width types).
std::string DescrOf(const va::Type& t) {
  switch (t.kind) {
    case va::Kind::kBool:
      return "|b1";
    case va::Kind::kInt:
      return std::string(t.bit_width == 8 ? "|" : "<") + (t.is_signed ? "i" : "u") +
             std::to_string(t.bit_width / 8);
    case va::Kind::kFloat:
      return "<f" + std::to_string(t.bit_width / 8);
    case va::Kind::kTimestamp:  // int64 counts, the unit in pandas_dtype_
    case va::Kind::kDuration:
      return "<i8";
    case va::Kind::kFixedSizeBinary:
      return "|S" + std::to_string(t.byte_width);
    default:
      return "";  // variable width: decided per column (see StringColumn)
  }
}

// Offsets of a variable-width column: value i is data[off(i), off(i+1)).
struct Strings {
  const uint8_t* offsets;
  const uint8_t* bytes;
  bool large;
  uint64_t begin(uint64_t i) const {
    return large ? static_cast<uint64_t>(Load<int64_t>(offsets + 8 * i))
                 : static_cast<uint64_t>(Load<int32_t>(offsets + 4 * i));
  }
};

// UTF-8 -> UCS-4 (invalid sequences become U+FFFD).
void Ucs4(const uint8_t* p, uint64_t n, std::vector<uint32_t>* out) {
  out->clear();
  for (uint64_t i = 0; i < n;) {
    const uint8_t c = p[i];
    const int extra = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
    uint32_t ch = extra ? c & (0x3fu >> extra) : c;
    bool ok = c < 0x80 || extra > 0;
    for (int k = 1; k <= extra; ++k) {
      if (i + static_cast<uint64_t>(k) >= n || (p[i + static_cast<uint64_t>(k)] & 0xc0) != 0x80) {
        ok = false;
        break;
      }
      ch = (ch << 6) | (p[i + static_cast<uint64_t>(k)] & 0x3f);
    }
    out->push_back(ok ? ch : 0xfffd);
    i += ok ? 1 + static_cast<uint64_t>(extra) : 1;
  }
}

// Where a column's buffers are: ranges of the upload (copied into blobs in the
// kernel), or bytes decoded here from a dictionary (copied with create_blob).
struct Src {
  const uint8_t* data;
  bool decoded;
};

int CopyBlob(vy_call* call, const Src& src, uint64_t offset, uint64_t length, vy_id* out) {
  return src.decoded ? host->create_blob(call, src.data + offset, length, out)
                     : host->create_blob_from_upload(call, offset, length, out);
}

const uint8_t kZeros[8] = {};  // the buffers of a column without rows

// Bytes one dictionary-encoded column may decode to.
constexpr uint64_t kMaxDecodedBytes = uint64_t{1} << 32;

uint64_t IndexAt(const uint8_t* p, const va::Type& t, uint64_t i) {
  switch (t.bit_width) {
    case 8:
      return t.is_signed ? static_cast<uint64_t>(Load<int8_t>(p + i)) : Load<uint8_t>(p + i);
    case 16:
      return t.is_signed ? static_cast<uint64_t>(Load<int16_t>(p + 2 * i))
                         : Load<uint16_t>(p + 2 * i);
    case 32:
      return t.is_signed ? static_cast<uint64_t>(Load<int32_t>(p + 4 * i))
                         : Load<uint32_t>(p + 4 * i);
    default:
      return Load<uint64_t>(p + 8 * i);
  }
}

// Dictionary-encoded column `c` of `f` decoded into plain buffers in *mem: the values
// its (validated) indices pick, in row order; *out's ranges index *mem.
bool Decode(const uint8_t* data, const va::Field& f, const va::Column& c, const va::Column& dict,
            std::string* mem, va::Column* out, std::string* why) {
  const va::Type& t = f.type;
  const uint64_t n = c.length, bits = (n + 7) / 8;
  const uint8_t* bitmap = c.null_count ? data + c.buffers[0].offset : nullptr;
  const uint8_t* idx = data + c.buffers[1].offset;
  auto valid = [&](uint64_t i) { return !bitmap || (bitmap[i / 8] >> (i % 8) & 1); };
  const std::string col = "column '" + f.name + "'";
  mem->clear();
  out->length = n;
  out->null_count = c.null_count;
  out->buffers.assign(1, va::Range{0, bitmap ? bits : 0});
  if (bitmap) mem->append(reinterpret_cast<const char*>(bitmap), bits);
  const uint8_t* values = data + dict.buffers[1].offset;
  if (t.kind == va::Kind::kBool) {
    out->buffers.push_back({mem->size(), bits});
    const uint64_t at = mem->size();
    mem->append(bits, '\0');
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t k = valid(i) ? IndexAt(idx, f.index, i) : 0;
      if (valid(i) && (values[k / 8] >> (k % 8) & 1))
        (*mem)[at + i / 8] = static_cast<char>((*mem)[at + i / 8] | 1 << (i % 8));
    }
    return true;
  }
  if (const uint64_t vb = va::ValueBytes(t)) {
    if (n > kMaxDecodedBytes / vb) {
      *why = col + " decodes to over " + std::to_string(kMaxDecodedBytes) + " bytes";
      return false;
    }
    out->buffers.push_back({mem->size(), n * vb});
    const uint64_t at = mem->size();
    mem->append(n * vb, '\0');
    for (uint64_t i = 0; i < n; ++i) {
      if (valid(i)) std::memcpy(&(*mem)[at + i * vb], values + IndexAt(idx, f.index, i) * vb, vb);
    }
    return true;
  }
  const bool large = t.kind == va::Kind::kLargeUtf8 || t.kind == va::Kind::kLargeBinary;
  Strings s{values, data + dict.buffers[2].offset, large};
  uint64_t total = 0;
  for (uint64_t i = 0; i < n; ++i) {
    if (!valid(i)) continue;
    const uint64_t k = IndexAt(idx, f.index, i);
    total += s.begin(k + 1) - s.begin(k);
    if (total > (large ? kMaxDecodedBytes : uint64_t{INT32_MAX})) {
      *why = col + " decodes to over " + std::to_string(large ? kMaxDecodedBytes : INT32_MAX) +
             " bytes of values";
      return false;
    }
  }
  const uint64_t w = large ? 8 : 4;
  out->buffers.push_back({mem->size(), (n + 1) * w});
  out->buffers.push_back({mem->size() + (n + 1) * w, total});
  std::string bytes;
  bytes.reserve(total);
  for (uint64_t i = 0; i <= n; ++i) {
    const int64_t o = static_cast<int64_t>(bytes.size());
    if (large) {
      mem->append(reinterpret_cast<const char*>(&o), 8);
    } else {
      const int32_t o32 = static_cast<int32_t>(o);
      mem->append(reinterpret_cast<const char*>(&o32), 4);
    }
    if (i < n && valid(i)) {
      const uint64_t k = IndexAt(idx, f.index, i);
      bytes.append(reinterpret_cast<const char*>(s.bytes + s.begin(k)),
                   s.begin(k + 1) - s.begin(k));
    }
  }
  *mem += bytes;
  return true;
}

// The pandas dtype the Python client records for a timestamp or duration column
// ("datetime64[ms]", "datetime64[ns, UTC]", "timedelta64[us]"), "" for other types.
std::string PandasDtype(const va::Type& t) {
  if (t.kind == va::Kind::kTimestamp)
    return std::string("datetime64[") + kUnits[t.unit] +
           (t.timezone.empty() ? "" : ", " + t.timezone) + "]";
  if (t.kind == va::Kind::kDuration) return std::string("timedelta64[") + kUnits[t.unit] + "]";
  return "";
}

// A 1-D vineyard::Tensor<T> over `blob` in Vineyard's layout (tensor_util's
// CreateTensor). Timestamps and durations are int64 counts with pandas_dtype_, the
// Python client's layout for pandas' datetime64/timedelta64 columns, which the csv and
// numpy plugins show as integers and the arrow plugin as Timestamp/Duration again.
int ColumnTensor(vy_call* call, const std::string& descr, uint64_t itemsize, uint64_t rows,
                 vy_id blob, uint64_t nbytes, const std::string& pandas_dtype, vy_id* out) {
  if (pandas_dtype.empty())
    return CreateTensor(call, descr, itemsize, {rows}, false, blob, nbytes, out);
  nlohmann::ordered_json meta = {
      {"typename", "vineyard::Tensor<int64>"},
      {"value_type_", "int64"},
      {"value_type_meta_", "<i8"},
      {"shape_", "[" + std::to_string(rows) + "]"},
      {"partition_index_", "[]"},
      {"order_", "\"C\""},
      {"nbytes", nbytes},
      {"pandas_dtype_", pandas_dtype},
      {"buffer_", {{"id", IdText(blob)}}},
  };
  return CreateObject(call, meta, out);
}

// A Tensor column from NumPy-layout bytes made here (bools, strings).
int TensorFromBytes(vy_call* call, const std::string& descr, uint64_t itemsize, uint64_t rows,
                    const std::string& bytes, vy_id* out) {
  vy_id blob;
  if (int rc = host->create_blob(call, bytes.data(), bytes.size(), &blob)) return rc;
  return ColumnTensor(call, descr, itemsize, rows, blob, bytes.size(), "", out);
}

// One column of a one-batch, null-free file as a 1-D Tensor in Vineyard's layout.
int TensorColumn(vy_call* call, const Src& up, const va::Field& f, const va::Column& c,
                 vy_id* out) {
  const uint64_t n = c.length;
  const va::Range& values = c.buffers[1];
  const uint8_t* p = up.data + values.offset;
  if (f.type.kind == va::Kind::kBool) {
    std::string bytes(n, '\0');
    for (uint64_t i = 0; i < n; ++i) bytes[i] = static_cast<char>(p[i / 8] >> (i % 8) & 1);
    return TensorFromBytes(call, "|b1", 1, n, bytes, out);
  }
  if (va::BufferCount(f.type) == 3) {
    const bool large = f.type.kind == va::Kind::kLargeUtf8 || f.type.kind == va::Kind::kLargeBinary;
    const bool text = f.type.kind == va::Kind::kUtf8 || f.type.kind == va::Kind::kLargeUtf8;
    Strings s{p, up.data + c.buffers[2].offset, large};
    std::vector<uint32_t> u;
    uint64_t width = 1;
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t len = s.begin(i + 1) - s.begin(i);
      if (text) {
        Ucs4(s.bytes + s.begin(i), len, &u);
        width = std::max<uint64_t>(width, u.size());
      } else {
        width = std::max(width, len);
      }
    }
    const uint64_t itemsize = text ? 4 * width : width;
    std::string bytes(n * itemsize, '\0');
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t len = s.begin(i + 1) - s.begin(i);
      if (text) {
        Ucs4(s.bytes + s.begin(i), len, &u);
        std::memcpy(&bytes[i * itemsize], u.data(), u.size() * 4);
      } else if (len) {
        std::memcpy(&bytes[i * itemsize], s.bytes + s.begin(i), len);
      }
    }
    const std::string descr = (text ? "<U" : "|S") + std::to_string(width);
    return TensorFromBytes(call, descr, itemsize, n, bytes, out);
  }
  // Fixed width: one blob, copied once from the upload in the kernel.
  const uint64_t bytes = n * va::ValueBytes(f.type);
  vy_id blob;
  if (int rc = CopyBlob(call, up, values.offset, bytes, &blob)) return rc;
  return ColumnTensor(call, DescrOf(f.type), va::ValueBytes(f.type), n, blob, bytes,
                      PandasDtype(f.type), out);
}

// Whether every column fits a DataFrame of Tensors: one batch, no nulls,
// strings not too wide as UCS-4. Else *why says what sends the file to a Table.
bool FitsDataFrame(const std::vector<std::vector<Src>>& src, const va::Parsed& p) {
  if (p.batches.size() > 1) return false;
  for (size_t i = 0; i < p.fields.size(); ++i) {
    const va::Type& t = p.fields[i].type;
    if (va::BufferCount(t) == 2 && DescrOf(t).empty()) return false;
    if (p.batches.empty()) continue;
    const va::Column& c = p.batches[0].columns[i];
    if (c.null_count > 0) return false;
    if (va::BufferCount(t) == 3) {
      const bool large = t.kind == va::Kind::kLargeUtf8 || t.kind == va::Kind::kLargeBinary;
      Strings s{src[0][i].data + c.buffers[1].offset, nullptr, large};
      uint64_t widest = 0;
      for (uint64_t r = 0; r < c.length; ++r)
        widest = std::max(widest, s.begin(r + 1) - s.begin(r));
      if (c.length && widest > kMaxUnicodeTensorBytes / 4 / c.length) return false;
    }
  }
  return true;
}

int BuildDataFrame(vy_call* call, const std::vector<std::vector<Src>>& src, const va::Parsed& p,
                   vy_id* result) {
  nlohmann::ordered_json df = {{"typename", "vineyard::DataFrame"}};
  std::string columns = "[";
  uint64_t nbytes = 0;
  for (size_t i = 0; i < p.fields.size(); ++i) {
    vy_id col;
    const va::Field& f = p.fields[i];
    if (p.batches.empty()) {  // a schema without rows: empty columns
      va::Column empty;
      empty.buffers.assign(static_cast<size_t>(va::BufferCount(f.type)), va::Range());
      std::string zero_offsets(8, '\0');
      if (va::BufferCount(f.type) == 3) {
        const Src none{reinterpret_cast<const uint8_t*>(zero_offsets.data()), true};
        if (int rc = TensorColumn(call, none, f, empty, &col)) return rc;
      } else if (int rc = TensorColumn(call, Src{kZeros, true}, f, empty, &col)) {
        return rc;
      }
    } else if (int rc = TensorColumn(call, src[0][i], f, p.batches[0].columns[i], &col)) {
      return rc;
    }
    vy_object o;
    if (host->get_object(call, col, &o) == 0) nbytes += o.nbytes;
    const std::string key = nlohmann::json(f.name).dump();
    columns += (i ? ", " : "") + key;
    df["__values_-key-" + std::to_string(i)] = key;
    df["__values_-value-" + std::to_string(i)] = {{"id", IdText(col)}};
  }
  df["columns_"] = columns + "]";
  df["__values_-size"] = p.fields.size();
  df["partition_index_row_"] = -1;
  df["partition_index_column_"] = -1;
  df["row_batch_index_"] = 0;
  df["nbytes"] = nbytes;
  return CreateObject(call, df, result);
}

// ---- the Table route: Vineyard's Arrow layout ----

int UploadBlob(vy_call* call, const Src& src, const va::Range& r, uint64_t length, vy_id* out) {
  return CopyBlob(call, src, r.offset, length, out);
}

// An array object (NumericArray<T>, BooleanArray, StringArray...) over blobs copied
// from the upload, one per buffer.
int ArrayObject(vy_call* call, const Src& up, const va::Field& f, const va::Column& c, vy_id* out,
                uint64_t* nbytes) {
  const uint64_t n = c.length;
  const va::Type& t = f.type;
  vy_id bitmap, values, data;
  const uint64_t bits = (n + 7) / 8;
  if (int rc = UploadBlob(call, up, c.buffers[0], c.null_count ? bits : 0, &bitmap)) return rc;
  nlohmann::ordered_json meta;
  uint64_t size = c.null_count ? bits : 0;
  if (va::BufferCount(t) == 3) {
    const bool large = t.kind == va::Kind::kLargeUtf8 || t.kind == va::Kind::kLargeBinary;
    const bool text = t.kind == va::Kind::kUtf8 || t.kind == va::Kind::kLargeUtf8;
    const uint64_t w = large ? 8 : 4;
    Strings s{up.data + c.buffers[1].offset, nullptr, large};
    const uint64_t end = n ? s.begin(n) : 0;
    if (int rc = UploadBlob(call, up, c.buffers[1], n ? (n + 1) * w : 0, &values)) return rc;
    if (int rc = UploadBlob(call, up, c.buffers[2], end, &data)) return rc;
    meta["typename"] =
        std::string("vineyard::") + (large ? "Large" : "") + (text ? "StringArray" : "BinaryArray");
    meta["buffer_offsets_"] = {{"id", IdText(values)}};
    meta["buffer_data_"] = {{"id", IdText(data)}};
    size += (n ? (n + 1) * w : 0) + end;
  } else {
    const uint64_t len = t.kind == va::Kind::kBool ? bits : n * va::ValueBytes(t);
    if (int rc = UploadBlob(call, up, c.buffers[1], len, &values)) return rc;
    size += len;
    std::string vy, np;
    if (t.kind == va::Kind::kBool) {
      meta["typename"] = "vineyard::BooleanArray";
    } else if (t.kind == va::Kind::kFixedSizeBinary) {
      meta["typename"] = "vineyard::FixedSizeBinaryArray";
      meta["byte_width_"] = t.byte_width;
    } else {
      // Timestamps and durations are int64 here; schema_ keeps their unit and zone.
      const std::string descr =
          t.kind == va::Kind::kFloat || t.kind == va::Kind::kInt ? DescrOf(t) : std::string("<i8");
      NamesOf(descr, va::ValueBytes(t), &vy, &np);
      meta["typename"] = "vineyard::NumericArray<" + vy + ">";
    }
    meta["buffer_"] = {{"id", IdText(values)}};
  }
  meta["length_"] = n;
  meta["null_count_"] = c.null_count;
  meta["offset_"] = 0;
  meta["null_bitmap_"] = {{"id", IdText(bitmap)}};
  meta["nbytes"] = size;
  *nbytes += size;
  return CreateObject(call, meta, out);
}

// vineyard::SchemaProxy: the schema as an encapsulated IPC message in buffer_, as
// pyarrow's Schema.serialize() makes it.
int SchemaProxy(vy_call* call, const std::vector<va::Field>& fields, vy_id* out) {
  const std::string bytes = va::SchemaMessage(fields);
  vy_id blob;
  if (int rc = host->create_blob(call, bytes.data(), bytes.size(), &blob)) return rc;
  nlohmann::ordered_json meta = {{"typename", "vineyard::SchemaProxy"},
                                 {"buffer_", {{"id", IdText(blob)}}},
                                 {"nbytes", bytes.size()}};
  return CreateObject(call, meta, out);
}

int BuildTable(vy_call* call, const std::vector<std::vector<Src>>& src, const va::Parsed& p,
               vy_id* result) {
  vy_id schema;
  if (int rc = SchemaProxy(call, p.fields, &schema)) return rc;
  nlohmann::json names = nlohmann::json::array();
  for (auto& f : p.fields) names.push_back(f.name);
  uint64_t rows = 0, total = 0;
  nlohmann::ordered_json table = {{"typename", "vineyard::Table"}};
  for (size_t b = 0; b < p.batches.size(); ++b) {
    const va::Batch& batch = p.batches[b];
    nlohmann::ordered_json rb = {{"typename", "vineyard::RecordBatch"},
                                 {"row_num_", batch.rows},
                                 {"column_num_", p.fields.size()},
                                 {"__columns_-size", p.fields.size()},
                                 {"columns_", names.dump()},
                                 {"schema_", {{"id", IdText(schema)}}}};
    uint64_t nbytes = 0;
    for (size_t i = 0; i < p.fields.size(); ++i) {
      vy_id col;
      if (int rc = ArrayObject(call, src[b][i], p.fields[i], batch.columns[i], &col, &nbytes))
        return rc;
      rb["__columns_-" + std::to_string(i)] = {{"id", IdText(col)}};
    }
    rb["nbytes"] = nbytes;
    vy_id id;
    if (int rc = CreateObject(call, rb, &id)) return rc;
    table["__batches_-" + std::to_string(b)] = {{"id", IdText(id)}};
    rows += batch.rows;
    total += nbytes;
  }
  table["num_rows_"] = rows;
  table["num_columns_"] = p.fields.size();
  table["batch_num_"] = p.batches.size();
  table["__batches_-size"] = p.batches.size();
  table["columns_"] = names.dump();
  table["schema_"] = {{"id", IdText(schema)}};
  table["nbytes"] = total;
  return CreateObject(call, table, result);
}

}  // namespace

int BuildArrow(void*, vy_call* call, const vy_upload* up, vy_id* result) {
  va::Parsed parsed;
  std::string why;
  if (!va::ParseArrow(up->data, up->size, &parsed, &why)) {
    host->set_error(call, "%s", why.c_str());
    return -EINVAL;
  }
  // Dictionary-encoded columns are decoded into plain ones first (bytes kept in
  // `decoded`); everything else stays a range of the upload.
  std::deque<std::string> decoded;
  std::vector<std::vector<Src>> src(parsed.batches.size(),
                                    std::vector<Src>(parsed.fields.size(), Src{up->data, false}));
  for (size_t b = 0; b < parsed.batches.size(); ++b) {
    for (size_t i = 0; i < parsed.fields.size(); ++i) {
      const va::Field& f = parsed.fields[i];
      if (!f.dictionary) continue;
      va::Column plain;
      std::string mem;
      if (!Decode(up->data, f, parsed.batches[b].columns[i], parsed.dictionaries[f.dictionary_id],
                  &mem, &plain, &why)) {
        host->set_error(call, "%s", why.c_str());
        return -EINVAL;
      }
      decoded.push_back(std::move(mem));
      src[b][i] = Src{reinterpret_cast<const uint8_t*>(decoded.back().data()), true};
      parsed.batches[b].columns[i] = std::move(plain);
    }
  }
  for (va::Field& f : parsed.fields) f.dictionary = false;
  return FitsDataFrame(src, parsed) ? BuildDataFrame(call, src, parsed, result)
                                    : BuildTable(call, src, parsed, result);
}
