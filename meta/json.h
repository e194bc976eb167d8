// JSON parsing shared by meta/'s parsers of untrusted input (object_meta.cc, batch.cc).
// Internal to meta/: the other folders see parsed structs, never nlohmann.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "meta/object_meta.h"
#include "meta/ordered_map.h"
#include "meta/status.h"

namespace vineyard {

// Objects keep their keys in order, looked up through a hash index (meta/ordered_map.h).
using ojson = nlohmann::basic_json<IndexedOrderedMap>;

// Checks JSON text before it is parsed: no NUL byte (JSON never holds one raw, and
// the parser takes it for the end of the input, so `{"a":1}` NUL garbage would
// pass), and no nesting deeper than `max_depth`, scanning outside strings, so that
// neither the parser nor anything walking the tree recurses deeply.
inline Status CheckJsonText(std::string_view s, int max_depth, const char* what) {
  if (size_t nul = s.find('\0'); nul != std::string_view::npos) {
    return Status::InvalidArgument(std::string(what) + ": a NUL byte at offset " +
                                   std::to_string(nul) + " (JSON ends before it or holds none)");
  }
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) {
        return Status::InvalidArgument(std::string(what) + " nests deeper than " +
                                       std::to_string(max_depth) + " levels");
      }
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return Status::OK();
}

// The one place this file parses JSON text: one parse, every exception of the
// library (syntax, number overflow such as 1e400, invalid UTF-8) turned into
// InvalidArgument with the parser's reason. Anything after the value is refused
// (strict parsing; NULs are refused by CheckJsonText first).
template <typename Json>
Result<Json> ParseJson(std::string_view s, int max_depth, const char* what) {
  VY_RETURN_IF_ERROR(CheckJsonText(s, max_depth, what));
  try {
    return Json::parse(s.begin(), s.end());
  } catch (const nlohmann::json::exception& e) {
    std::string why = e.what();  // "[json.exception.out_of_range.406] number overflow ..."
    if (size_t pos = why.find("] "); pos != std::string::npos) why = why.substr(pos + 2);
    return Status::InvalidArgument(std::string(what) + ": invalid JSON: " + why);
  } catch (const std::exception& e) {  // std::bad_alloc
    return Status::InvalidArgument(std::string(what) + " could not be parsed: " + e.what());
  }
}

// The create form (ParseCreateMeta) from an already parsed document whose depth is
// bounded by kMaxMetaDepth.
Result<CreateSpec> SpecFromJson(ojson doc);

}  // namespace vineyard
