#include "json_report.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>

namespace flash::apps {

JsonObject& JsonObject::field(const std::string& key, const std::string& json) {
  if (!body_.empty()) body_ += ", ";
  body_ += json_quote(key) + ": " + json;
  return *this;
}

JsonObject& JsonObject::string(const std::string& key, const std::string& value) {
  return field(key, json_quote(value));
}

JsonObject& JsonObject::number(const std::string& key, double value) {
  if (!std::isfinite(value)) return null(key);
  // 10 significant digits: more than any timing or error statistic carries, and round-trips floats.
  char text[32];
  std::snprintf(text, sizeof text, "%.10g", value);
  return field(key, text);
}

JsonObject& JsonObject::integer(const std::string& key, int64_t value) { return field(key, std::to_string(value)); }

JsonObject& JsonObject::boolean(const std::string& key, bool value) { return field(key, value ? "true" : "false"); }

JsonObject& JsonObject::null(const std::string& key) { return field(key, "null"); }

JsonObject& JsonObject::raw(const std::string& key, const std::string& json) { return field(key, json); }

std::string JsonObject::str() const { return "{" + body_ + "}"; }

std::string json_quote(const std::string& text) {
  constexpr unsigned char kFirstPrintable = 0x20;
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < kFirstPrintable) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string json_array(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ",\n  " : "\n  ") + items[i];
  return out + (items.empty() ? "]" : "\n]");
}

std::string json_int_array(const std::vector<int>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + std::to_string(values[i]);
  return out + "]";
}

std::string utc_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

bool write_text_file(const std::string& path, const std::string& text, std::string* error) {
  std::ofstream file(path);
  file << text << "\n";
  file.close();
  if (!file) {
    *error = "cannot write " + path + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

}  // namespace flash::apps
