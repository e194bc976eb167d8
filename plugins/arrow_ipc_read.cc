// arrow_ipc_read.cc: the parser of arrow_ipc.h, which validates every length, offset
// and range of an Arrow IPC file or stream before anyone reads through it.
#include <flatbuffers/flatbuffers.h>

#include <cstring>
#include <map>

#include "arrow_format_generated.h"
#include "arrow_ipc.h"
#include "arrow_ipc_format.h"

namespace vy_arrow {

namespace fb = org::apache::arrow::flatbuf;
using namespace format;


namespace {

bool Fail(std::string* why, const std::string& msg) {
  *why = msg;
  return false;
}

// Verifies the flatbuffer root T held in p[0, n) and sets *root to it. flatbuffers
// reads scalars in place, so metadata that does not start 8-byte aligned in memory (a
// stream whose lengths are not multiples of 8, the old 4-byte length prefix) is
// verified and read from an aligned copy kept in *copy.
template <typename T>
bool VerifyRoot(const uint8_t* p, uint64_t n, const char* what, std::vector<uint64_t>* copy,
                const T** root, std::string* why) {
  if (n > kMaxMetadataBytes)
    return Fail(why, std::string(what) + " is " + std::to_string(n) + " bytes, over the limit of " +
                         std::to_string(kMaxMetadataBytes));
  if (reinterpret_cast<uintptr_t>(p) % 8 != 0) {
    copy->assign((n + 7) / 8, 0);
    if (n > 0) std::memcpy(copy->data(), p, n);
    p = reinterpret_cast<const uint8_t*>(copy->data());
  }
  flatbuffers::Verifier v(p, static_cast<size_t>(n), kMaxFlatbufferDepth, kMaxFlatbufferTables);
  if (!v.VerifyBuffer<T>(nullptr))
    return Fail(why, std::string(what) + " is not a valid flatbuffer");
  *root = flatbuffers::GetRoot<T>(p);
  return true;
}

bool ReadType(const fb::Field* f, const std::string& name, Type* t, std::string* why) {
  const std::string col = "column '" + name + "'";
  switch (f->type_type()) {
    case fb::Type_Bool:
      t->kind = Kind::kBool;
      return true;
    case fb::Type_Int: {
      const fb::Int* i = f->type_as_Int();
      t->kind = Kind::kInt;
      t->bit_width = i ? i->bitWidth() : 0;
      t->is_signed = i && i->is_signed();
      if (t->bit_width != 8 && t->bit_width != 16 && t->bit_width != 32 && t->bit_width != 64)
        return Fail(why, col + ": Int of " + std::to_string(t->bit_width) + " bits");
      return true;
    }
    case fb::Type_FloatingPoint: {
      const fb::FloatingPoint* p = f->type_as_FloatingPoint();
      const int prec = p ? p->precision() : -1;
      if (prec < 0 || prec > 2) return Fail(why, col + ": unknown float precision");
      t->kind = Kind::kFloat;
      t->bit_width = 16 << prec;
      return true;
    }
    case fb::Type_Utf8:
      t->kind = Kind::kUtf8;
      return true;
    case fb::Type_LargeUtf8:
      t->kind = Kind::kLargeUtf8;
      return true;
    case fb::Type_Binary:
      t->kind = Kind::kBinary;
      return true;
    case fb::Type_LargeBinary:
      t->kind = Kind::kLargeBinary;
      return true;
    case fb::Type_FixedSizeBinary: {
      const fb::FixedSizeBinary* x = f->type_as_FixedSizeBinary();
      t->kind = Kind::kFixedSizeBinary;
      t->byte_width = x ? x->byteWidth() : 0;
      if (t->byte_width < 1 || t->byte_width > kMaxFixedWidth)
        return Fail(why, col + ": FixedSizeBinary width " + std::to_string(t->byte_width) +
                             " is outside 1.." + std::to_string(kMaxFixedWidth));
      return true;
    }
    case fb::Type_Timestamp:
    case fb::Type_Duration: {
      const bool ts = f->type_type() == fb::Type_Timestamp;
      const fb::Timestamp* x = f->type_as_Timestamp();
      const fb::Duration* d = f->type_as_Duration();
      t->kind = ts ? Kind::kTimestamp : Kind::kDuration;
      t->bit_width = 64;
      t->unit = ts ? (x ? x->unit() : 0) : (d ? d->unit() : fb::TimeUnit_MILLISECOND);
      if (t->unit < 0 || t->unit > 3) return Fail(why, col + ": unknown time unit");
      if (ts && x && x->timezone()) {
        if (x->timezone()->size() > kMaxNameBytes) return Fail(why, col + ": timezone too long");
        t->timezone = x->timezone()->str();
      }
      return true;
    }
    default:
      break;
  }
  const char* type = fb::EnumNameType(f->type_type());
  return Fail(why, col + " has Arrow type " + std::string(*type ? type : "unknown") +
                       ", which is not supported (bool, int, float, utf8, binary, "
                       "fixed_size_binary, timestamp and duration are)");
}

bool ReadSchema(const fb::Schema* s, std::vector<Field>* out, std::string* why) {
  if (!s) return Fail(why, "the schema is missing");
  if (s->endianness() != fb::Endianness_Little)
    return Fail(why, "big-endian Arrow data is not supported");
  const auto* fields = s->fields();
  const uint64_t n = fields ? fields->size() : 0;
  if (n > kMaxFields)
    return Fail(why, "the schema has " + std::to_string(n) + " columns, over the limit of " +
                         std::to_string(kMaxFields));
  out->clear();
  for (uint64_t i = 0; i < n; ++i) {
    const fb::Field* f = fields->Get(static_cast<flatbuffers::uoffset_t>(i));
    Field field;
    if (f->name()) {
      if (f->name()->size() > kMaxNameBytes)
        return Fail(why, "the name of column " + std::to_string(i) + " is over " +
                             std::to_string(kMaxNameBytes) + " bytes");
      field.name = f->name()->str();
    }
    field.nullable = f->nullable();
    if (const fb::DictionaryEncoding* d = f->dictionary()) {
      field.dictionary = true;
      field.dictionary_id = d->id();
      field.index.kind = Kind::kInt;
      field.index.bit_width = d->indexType() ? d->indexType()->bitWidth() : 32;
      field.index.is_signed = d->indexType() ? d->indexType()->is_signed() : true;
      const int w = field.index.bit_width;
      if (w != 8 && w != 16 && w != 32 && w != 64)
        return Fail(why, "column '" + field.name + "': dictionary indices of " + std::to_string(w) +
                             " bits");
    }
    if (f->children() && f->children()->size() > 0 && f->type_type() != fb::Type_Struct_ &&
        f->type_type() != fb::Type_List)
      return Fail(why, "column '" + field.name + "' has child fields, which is not supported");
    if (!ReadType(f, field.name, &field.type, why)) return false;
    out->push_back(std::move(field));
  }
  return true;
}

// One encapsulated message at data[pos, size): its flatbuffer (verified) and body.
struct Message {
  const fb::Message* msg = nullptr;  // null: the end-of-stream marker
  std::vector<uint64_t> aligned;     // the metadata, when it is not 8-byte aligned in place
  uint64_t meta_end = 0;             // end of prefix + metadata (= body start)
  uint64_t body_length = 0;
};

bool ReadMessage(const uint8_t* data, uint64_t size, uint64_t pos, Message* m, std::string* why) {
  const std::string where = "at byte " + std::to_string(pos);
  if (size - pos < 4) return Fail(why, "truncated message " + where);
  uint64_t hdr = 4;
  uint32_t len = Load<uint32_t>(data + pos);
  if (len == kContinuation) {
    if (size - pos < 8) return Fail(why, "truncated message " + where);
    len = Load<uint32_t>(data + pos + 4);
    hdr = 8;
  }
  if (len == 0) {  // end of stream
    m->msg = nullptr;
    m->meta_end = pos + hdr;
    m->body_length = 0;
    return true;
  }
  if (len > kMaxMetadataBytes)
    return Fail(why, "message metadata " + where + " says " + std::to_string(len) +
                         " bytes, over the limit of " + std::to_string(kMaxMetadataBytes));
  if (len > size - pos - hdr)
    return Fail(why, "truncated message " + where + ": metadata of " + std::to_string(len) +
                         " bytes, " + std::to_string(size - pos - hdr) + " left");
  if (!VerifyRoot(data + pos + hdr, len, ("the message " + where).c_str(), &m->aligned, &m->msg,
                  why))
    return false;
  m->meta_end = pos + hdr + len;
  const int64_t body = m->msg->bodyLength();
  if (body < 0 || static_cast<uint64_t>(body) > size - m->meta_end)
    return Fail(why, "truncated message " + where + ": its body of " + std::to_string(body) +
                         " bytes runs past the end of the input");
  m->body_length = static_cast<uint64_t>(body);
  return true;
}

// Checks that `offsets` (n+1 values of W bytes) are monotonic and inside `bytes`.
template <typename W>
bool CheckOffsets(const uint8_t* p, uint64_t n, uint64_t bytes_len, const std::string& col,
                  std::string* why) {
  W prev = Load<W>(p);
  if (prev < 0) return Fail(why, col + ": negative first offset");
  for (uint64_t i = 1; i <= n; ++i) {
    W cur = Load<W>(p + i * sizeof(W));
    if (cur < prev) return Fail(why, col + ": offsets decrease at row " + std::to_string(i - 1));
    prev = cur;
  }
  if (static_cast<uint64_t>(prev) > bytes_len)
    return Fail(why, col + ": offsets point past its " + std::to_string(bytes_len) + " bytes");
  return true;
}

// Checks that the non-null indices of dictionary-encoded column `c` lie inside `dict`.
template <typename I>
bool CheckIndices(const uint8_t* data, const Column& c, uint64_t dict_length,
                  const std::string& col, std::string* why) {
  const uint8_t* valid = c.null_count ? data + c.buffers[0].offset : nullptr;
  const uint8_t* p = data + c.buffers[1].offset;
  for (uint64_t i = 0; i < c.length; ++i) {
    if (valid && !(valid[i / 8] >> (i % 8) & 1)) continue;
    const I v = Load<I>(p + i * sizeof(I));
    if (v < 0 || static_cast<uint64_t>(v) >= dict_length)
      return Fail(why, col + ": index " + std::to_string(v) + " at row " + std::to_string(i) +
                           " is outside its dictionary of " + std::to_string(dict_length) +
                           " values");
  }
  return true;
}

// Checks the values of `column` (type t, its buffers inside the body) against its length.
bool CheckValues(const uint8_t* data, const Type& t, const Column& column, const std::string& col,
                 std::string* why) {
  const uint64_t n = column.length, bits = (n + 7) / 8;
  if (column.null_count > 0 && column.buffers[0].length < bits)
    return Fail(why,
                col + ": its validity bitmap is shorter than " + std::to_string(bits) + " bytes");
  const Range& values = column.buffers[1];
  if (t.kind == Kind::kBool) {
    if (values.length < bits) return Fail(why, col + ": its values are cut short");
  } else if (BufferCount(t) == 2) {
    if (values.length / ValueBytes(t) < n)
      return Fail(why, col + ": its values are cut short (" + std::to_string(values.length) +
                           " bytes for " + std::to_string(n) + " rows)");
  } else if (n > 0) {
    const bool large = t.kind == Kind::kLargeUtf8 || t.kind == Kind::kLargeBinary;
    const uint64_t w = large ? 8 : 4;
    if (values.length / w < n + 1) return Fail(why, col + ": its offsets are cut short");
    const uint8_t* p = data + values.offset;
    const uint64_t bytes = column.buffers[2].length;
    if (large ? !CheckOffsets<int64_t>(p, n, bytes, col, why)
              : !CheckOffsets<int32_t>(p, n, bytes, col, why))
      return false;
  }
  return true;
}

// Checks that the indices of a dictionary-encoded column (storage type t) stay below
// the length of its dictionary, which must come before it.
bool CheckDictionaryIndices(const uint8_t* data, const Field& f, const Type& t,
                            const Column& column, const std::map<int64_t, Column>& dicts,
                            const std::string& col, std::string* why) {
  auto it = dicts.find(f.dictionary_id);
  if (it == dicts.end())
    return Fail(why, col + ": its dictionary " + std::to_string(f.dictionary_id) +
                         " does not come before it");
  const uint64_t dn = it->second.length;
  return t.bit_width == 8    ? (t.is_signed ? CheckIndices<int8_t>(data, column, dn, col, why)
                                            : CheckIndices<uint8_t>(data, column, dn, col, why))
         : t.bit_width == 16 ? (t.is_signed ? CheckIndices<int16_t>(data, column, dn, col, why)
                                            : CheckIndices<uint16_t>(data, column, dn, col, why))
         : t.bit_width == 32 ? (t.is_signed ? CheckIndices<int32_t>(data, column, dn, col, why)
                                            : CheckIndices<uint32_t>(data, column, dn, col, why))
                             : (t.is_signed ? CheckIndices<int64_t>(data, column, dn, col, why)
                                            : CheckIndices<uint64_t>(data, column, dn, col, why));
}

// Where a batch's buffers are: the message's buffer list, the body's place in the file.
struct BatchBody {
  const flatbuffers::Vector<const fb::Buffer*>* bufs;
  uint64_t body, body_length;
};

// Reads column `f` of a batch of `rows` from `node` and the buffers from *next on.
bool ReadColumn(const uint8_t* data, const fb::FieldNode* node, const BatchBody& bb, uint64_t* next,
                const Field& f, uint64_t rows, const std::string& which,
                const std::map<int64_t, Column>& dicts, Column* column, std::string* why) {
  const Type& t = StorageType(f);
  const std::string col = which + ", column '" + f.name + "' (" + TypeName(t) + ")";
  if (node->length() < 0 || static_cast<uint64_t>(node->length()) != rows ||
      node->null_count() < 0 || node->null_count() > node->length())
    return Fail(why, col + ": length " + std::to_string(node->length()) + " with " +
                         std::to_string(node->null_count()) + " nulls in a batch of " +
                         std::to_string(rows) + " rows");
  column->length = rows;
  column->null_count = static_cast<uint64_t>(node->null_count());
  for (int k = 0; k < BufferCount(t); ++k, ++*next) {
    const fb::Buffer* buf = bb.bufs->Get(static_cast<flatbuffers::uoffset_t>(*next));
    if (buf->offset() < 0 || buf->length() < 0 ||
        static_cast<uint64_t>(buf->offset()) > bb.body_length ||
        static_cast<uint64_t>(buf->length()) > bb.body_length - static_cast<uint64_t>(buf->offset()))
      return Fail(why, col + ": buffer " + std::to_string(k) + " lies outside the body");
    column->buffers.push_back(
        {bb.body + static_cast<uint64_t>(buf->offset()), static_cast<uint64_t>(buf->length())});
  }
  if (!CheckValues(data, t, *column, col, why)) return false;
  return !f.dictionary || CheckDictionaryIndices(data, f, t, *column, dicts, col, why);
}

// Validates record batch `rb` (a batch's, or a dictionary batch's data) whose body is
// data[body, body + body_length), against `fields`.
bool ReadBatch(const uint8_t* data, const fb::RecordBatch* rb, uint64_t body, uint64_t body_length,
               const std::vector<Field>& fields, const std::string& which,
               const std::map<int64_t, Column>& dicts, Batch* out, std::string* why) {
  if (!rb) return Fail(why, which + " has no RecordBatch header");
  if (const fb::BodyCompression* c = rb->compression())
    return Fail(why, which + " has a compressed body (" +
                         std::string(fb::EnumNameCompressionType(c->codec())) +
                         "), which is not supported: write the file uncompressed");
  if (rb->length() < 0 || static_cast<uint64_t>(rb->length()) > kMaxRows)
    return Fail(why, which + ": " + std::to_string(rb->length()) + " rows (limit " +
                         std::to_string(kMaxRows) + ")");
  out->rows = static_cast<uint64_t>(rb->length());
  const auto* nodes = rb->nodes();
  const auto* bufs = rb->buffers();
  const uint64_t nn = nodes ? nodes->size() : 0, nb = bufs ? bufs->size() : 0;
  uint64_t want = 0;
  for (const Field& f : fields) want += static_cast<uint64_t>(BufferCount(StorageType(f)));
  if (nn != fields.size() || nb != want)
    return Fail(why, which + " has " + std::to_string(nn) + " columns and " + std::to_string(nb) +
                         " buffers; the schema needs " + std::to_string(fields.size()) + " and " +
                         std::to_string(want));
  const BatchBody bb{bufs, body, body_length};
  uint64_t next = 0;
  out->columns.clear();
  for (uint64_t c = 0; c < nn; ++c) {
    Column column;
    if (!ReadColumn(data, nodes->Get(static_cast<flatbuffers::uoffset_t>(c)), bb, &next, fields[c],
                    out->rows, which, dicts, &column, why))
      return false;
    out->columns.push_back(std::move(column));
  }
  return true;
}

// A dictionary batch: its values, validated as a one-column batch of the field's type.
bool ReadDictionary(const uint8_t* data, const Message& m, Parsed* out, std::string* why) {
  const fb::DictionaryBatch* d = m.msg->header_as_DictionaryBatch();
  if (!d) return Fail(why, "a dictionary batch without its header");
  const std::string which = "dictionary " + std::to_string(d->id());
  if (d->isDelta()) return Fail(why, which + ": delta dictionaries are not supported");
  if (out->dictionaries.count(d->id()))
    return Fail(why, which + ": replacing a dictionary is not supported");
  if (out->dictionaries.size() >= kMaxFields)
    return Fail(why, "more than " + std::to_string(kMaxFields) + " dictionaries");
  const Field* owner = nullptr;
  for (const Field& f : out->fields)
    if (f.dictionary && f.dictionary_id == d->id()) owner = &f;
  if (!owner) return Fail(why, which + " belongs to no column");
  Field plain = *owner;
  plain.dictionary = false;
  Batch values;
  if (!ReadBatch(data, d->data(), m.meta_end, m.body_length, {plain},
                 which + " of column '" + owner->name + "'", {}, &values, why))
    return false;
  out->dictionaries[d->id()] = std::move(values.columns[0]);
  return true;
}

bool ParseStream(const uint8_t* data, uint64_t size, uint64_t pos, Parsed* out, std::string* why) {
  Message m;
  if (!ReadMessage(data, size, pos, &m, why)) return false;
  if (!m.msg || m.msg->header_type() != fb::MessageHeader_Schema)
    return Fail(why, "the stream does not start with a schema message");
  if (!ReadSchema(m.msg->header_as_Schema(), &out->fields, why)) return false;
  pos = m.meta_end + m.body_length;
  while (pos < size) {
    if (!ReadMessage(data, size, pos, &m, why)) return false;
    if (!m.msg) break;  // end of stream
    if (m.msg->header_type() == fb::MessageHeader_DictionaryBatch) {
      if (!ReadDictionary(data, m, out, why)) return false;
      pos = m.meta_end + m.body_length;
      continue;
    }
    if (m.msg->header_type() != fb::MessageHeader_RecordBatch)
      return Fail(why, std::string("unexpected ") +
                           fb::EnumNameMessageHeader(m.msg->header_type()) + " message at byte " +
                           std::to_string(pos));
    if (out->batches.size() >= kMaxBatches)
      return Fail(why, "more than " + std::to_string(kMaxBatches) + " record batches");
    Batch batch;
    if (!ReadBatch(data, m.msg->header_as_RecordBatch(), m.meta_end, m.body_length, out->fields,
                   "record batch " + std::to_string(out->batches.size()), out->dictionaries, &batch,
                   why))
      return false;
    out->batches.push_back(std::move(batch));
    pos = m.meta_end + m.body_length;
  }
  return true;
}

// Block i of a footer's vector, copied out: the verifier checks the vector's place but
// not that its 8-byte structs are aligned in memory.
fb::Block BlockAt(const flatbuffers::Vector<const fb::Block*>& v, uint64_t i) {
  fb::Block b;
  std::memcpy(static_cast<void*>(&b), v.Data() + i * sizeof(fb::Block), sizeof b);
  return b;
}

bool ParseFile(const uint8_t* data, uint64_t size, Parsed* out, std::string* why) {
  out->file = true;
  if (size < 8 + 4 + kMagicLen || std::memcmp(data + size - kMagicLen, kMagic, kMagicLen) != 0)
    return Fail(why, "truncated Arrow file: it does not end with ARROW1");
  const uint32_t flen = Load<uint32_t>(data + size - kMagicLen - 4);
  const uint64_t fend = size - kMagicLen - 4;
  if (flen > fend - 8)
    return Fail(why,
                "the footer size " + std::to_string(flen) + " runs past the start of the file");
  const uint64_t fstart = fend - flen;
  std::vector<uint64_t> aligned;
  const fb::Footer* footer = nullptr;
  if (!VerifyRoot(data + fstart, flen, "the footer", &aligned, &footer, why)) return false;
  if (!ReadSchema(footer->schema(), &out->fields, why)) return false;
  if (const auto* dicts = footer->dictionaries()) {
    if (dicts->size() > kMaxFields)
      return Fail(why, "more than " + std::to_string(kMaxFields) + " dictionaries");
    for (uint64_t i = 0; i < dicts->size(); ++i) {
      const fb::Block block = BlockAt(*dicts, i), *k = &block;
      if (k->offset() < 8 || static_cast<uint64_t>(k->offset()) >= fstart)
        return Fail(why, "dictionary block " + std::to_string(i) + " points outside the file");
      Message m;
      if (!ReadMessage(data, fstart, static_cast<uint64_t>(k->offset()), &m, why)) return false;
      if (!m.msg || m.msg->header_type() != fb::MessageHeader_DictionaryBatch)
        return Fail(why, "dictionary block " + std::to_string(i) + " is not a dictionary batch");
      if (!ReadDictionary(data, m, out, why)) return false;
    }
  }
  const auto* blocks = footer->recordBatches();
  const uint64_t n = blocks ? blocks->size() : 0;
  if (n > kMaxBatches)
    return Fail(why, "more than " + std::to_string(kMaxBatches) + " record batches");
  for (uint64_t i = 0; i < n; ++i) {
    const fb::Block block = BlockAt(*blocks, i), *k = &block;
    const std::string which = "record batch " + std::to_string(i);
    if (k->offset() < 8 || static_cast<uint64_t>(k->offset()) >= fstart || k->metaDataLength() <= 0)
      return Fail(why, which + ": its block points outside the file");
    Message m;
    // The message must end before the footer: parse within [0, fstart).
    if (!ReadMessage(data, fstart, static_cast<uint64_t>(k->offset()), &m, why)) return false;
    if (!m.msg) return Fail(why, which + ": its block points at the end-of-stream marker");
    Batch batch;
    if (!ReadBatch(data, m.msg->header_as_RecordBatch(), m.meta_end, m.body_length, out->fields,
                   which, out->dictionaries, &batch, why))
      return false;
    out->batches.push_back(std::move(batch));
  }
  return true;
}

}  // namespace

bool ParseArrow(const uint8_t* data, uint64_t size, Parsed* out, std::string* why) {
  *out = Parsed();
  if (size == 0 || data == nullptr) return Fail(why, "empty file: not Arrow IPC data");
  if (size >= kMagicLen && std::memcmp(data, kMagic, kMagicLen) == 0)
    return ParseFile(data, size, out, why);
  if (size < 8 || (Load<uint32_t>(data) != kContinuation && Load<int32_t>(data) <= 0))
    return Fail(why, "not Arrow IPC data: neither the ARROW1 magic nor a stream message");
  return ParseStream(data, size, 0, out, why);
}

bool ParseSchemaMessage(const uint8_t* data, uint64_t size, std::vector<Field>* fields,
                        std::string* why) {
  Message m;
  if (!data || !ReadMessage(data, size, 0, &m, why))
    return why->empty() ? Fail(why, "empty") : false;
  if (!m.msg || m.msg->header_type() != fb::MessageHeader_Schema)
    return Fail(why, "not a schema message");
  return ReadSchema(m.msg->header_as_Schema(), fields, why);
}

}  // namespace vy_arrow
