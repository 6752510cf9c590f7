// The small JSON writer behind the CLI's and the benchmark's reports (no dependency for one object).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace flash::apps {

// Builds one JSON object, keys in insertion order.
class JsonObject {
 public:
  JsonObject& string(const std::string& key, const std::string& value);
  // Non-finite numbers (a failed or skipped measurement) are written as null.
  JsonObject& number(const std::string& key, double value);
  JsonObject& integer(const std::string& key, int64_t value);
  JsonObject& boolean(const std::string& key, bool value);
  JsonObject& null(const std::string& key);
  // `json` must already be valid JSON (a nested object or array).
  JsonObject& raw(const std::string& key, const std::string& json);
  std::string str() const;

 private:
  JsonObject& field(const std::string& key, const std::string& json);
  std::string body_;
};

std::string json_quote(const std::string& text);
// A JSON array of already-serialised values.
std::string json_array(const std::vector<std::string>& items);
// A JSON array of integers on one line, e.g. [64, 32, 0].
std::string json_int_array(const std::vector<int>& values);
// The current UTC time as ISO 8601, e.g. 2026-11-24T05:12:00Z.
std::string utc_timestamp();
// Writes `text` and a newline to `path`; returns false with a reason on failure.
bool write_text_file(const std::string& path, const std::string& text, std::string* error);

}  // namespace flash::apps
