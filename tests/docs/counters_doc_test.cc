// docs/counters.md against the code: every name the --stats JSON can hold (each counter, and
// each drop reason under "drops") is in the first column of one of its tables, it names nothing
// the code lacks, and its drop-reason table gives each reason's counters and trace words as
// stack/counters.h does. The names come from the JSON writer itself, with every reason dropped
// once so that "drops" lists them all.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "stack/counters.h"
#include "stack/layer_context.h"

namespace tapstack {
namespace {

std::string read_doc() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  const std::string path = srcdir && workspace
                               ? fmt::format("{}/{}/docs/counters.md", srcdir, workspace)
                               : "docs/counters.md";
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot read " << path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> cells(const std::string& row) {
  std::vector<std::string> out;
  std::string cell;
  for (size_t i = 1; i < row.size(); ++i) {
    if (row[i] == '|') {
      const size_t first = cell.find_first_not_of(' ');
      const size_t last = cell.find_last_not_of(' ');
      out.push_back(first == std::string::npos ? "" : cell.substr(first, last - first + 1));
      cell.clear();
    } else {
      cell += row[i];
    }
  }
  return out;
}

bool is_name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// Each name (letters and digits only) between two quote characters (and followed by after),
// with where it starts. No std::regex: gcc 12 warns inside <regex> in the sanitizer build.
std::vector<std::pair<std::string, size_t>> quoted_names(const std::string& text, char quote,
                                                         std::string_view after = "") {
  std::vector<std::pair<std::string, size_t>> out;
  for (size_t at = text.find(quote); at != std::string::npos; at = text.find(quote, at + 1)) {
    size_t end = at + 1;
    while (end < text.size() && is_name_char(text[end])) ++end;
    if (end == at + 1 || end >= text.size() || text[end] != quote) continue;
    if (text.compare(end + 1, after.size(), after) != 0) continue;
    out.emplace_back(text.substr(at + 1, end - at - 1), at);
    at = end;
  }
  return out;
}

std::vector<std::string> backticked(const std::string& text) {
  std::vector<std::string> out;
  for (auto& [name, at] : quoted_names(text, '`')) out.push_back(name);
  return out;
}

struct DocTables {
  std::map<std::string, size_t> counters;  // first-column name -> line, before "## Drop reasons"
  std::map<std::string, std::vector<std::string>> reasons;  // reason -> its row's cells
  std::map<std::string, size_t> reason_lines;
};

DocTables parse_doc(const std::string& text) {
  DocTables doc;
  std::istringstream in(text);
  bool in_reasons = false;
  size_t number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (line.rfind("## ", 0) == 0) in_reasons = line == "## Drop reasons";
    if (line.rfind("| ", 0) != 0) continue;
    const std::vector<std::string> row = cells(line);
    if (row.empty()) continue;
    for (const std::string& name : backticked(row[0])) {
      if (in_reasons) {
        doc.reasons[name] = row;
        doc.reason_lines[name] = number;
      } else {
        CHECK_MESSAGE(!doc.counters.count(name),
                      fmt::format("counters.md:{}: {} is listed twice", number, name));
        doc.counters[name] = number;
      }
    }
  }
  return doc;
}

// The top-level counter names and the "drops" names of one JSON text.
std::pair<std::set<std::string>, std::set<std::string>> json_names(const std::string& json) {
  const size_t drops_at = json.find("\"drops\":");
  REQUIRE(drops_at != std::string::npos);
  std::set<std::string> counters;
  std::set<std::string> reasons;
  for (const auto& [name, at] : quoted_names(json, '"', ":")) {
    if (name == "drops") continue;
    (at < drops_at ? counters : reasons).insert(name);
  }
  return {counters, reasons};
}

TEST_CASE("docs/counters.md lists every name of the stats JSON, and only those") {
  Counters every;
  Trace trace;
  LayerContext context{every, trace};
  for (size_t i = 0; i < kDropReasonCount; ++i) context.drop(static_cast<DropReason>(i));
  const auto [counters, reasons] = json_names(every.to_json());
  REQUIRE(counters.size() == kCounterCount);
  REQUIRE(reasons.size() == kDropReasonCount);

  const DocTables doc = parse_doc(read_doc());
  for (const std::string& name : counters) {
    CHECK_MESSAGE(
        doc.counters.count(name),
        fmt::format("counter {} is in the JSON but in no table of docs/counters.md", name));
  }
  for (const auto& [name, line] : doc.counters) {
    CHECK_MESSAGE(counters.count(name),
                  fmt::format("docs/counters.md:{} names {}, which is no counter", line, name));
  }
  for (const std::string& name : reasons) {
    CHECK_MESSAGE(
        doc.reasons.count(name),
        fmt::format("drop reason {} is missing from docs/counters.md's last table", name));
  }
  for (const auto& [name, line] : doc.reason_lines) {
    CHECK_MESSAGE(reasons.count(name),
                  fmt::format("docs/counters.md:{} names {}, which is no drop reason", line, name));
  }
}

TEST_CASE("docs/counters.md gives each drop reason's counters and trace words as the code does") {
  const DocTables doc = parse_doc(read_doc());
  for (size_t i = 0; i < kDropReasonCount; ++i) {
    const auto reason = static_cast<DropReason>(i);
    const std::string name(drop_reason_name(reason));
    const auto row = doc.reasons.find(name);
    if (row == doc.reasons.end()) continue;  // reported by the test above
    const size_t line = doc.reason_lines.at(name);
    REQUIRE_MESSAGE(row->second.size() == 3, fmt::format("docs/counters.md:{}: three cells", line));
    CHECK_MESSAGE(fmt::format("{}", fmt::join(backticked(row->second[1]), ", ")) ==
                      drop_reason_counters(reason),
                  fmt::format("docs/counters.md:{}: {} counts in {}", line, name,
                              drop_reason_counters(reason)));
    CHECK_MESSAGE(row->second[2] == drop_reason_text(reason),
                  fmt::format("docs/counters.md:{}: {}'s trace words are \"{}\"", line, name,
                              drop_reason_text(reason)));
  }
}

}  // namespace
}  // namespace tapstack
