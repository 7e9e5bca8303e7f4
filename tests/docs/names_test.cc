// The names the documentation gives for our code exist in the tree, so that a rename or a move
// cannot leave a doc behind silently. Read as data: README.md, docs/*.md, md5opt/README.md,
// tests/fuzz/README.md, tests/sim/README.md; looked in: every file of stack/, md5opt/, tap/,
// tools/, bgp/, tests/ and docs/ (the .cc and .h files for names). Linux's names are not
// checked: there is no kernel tree here.
//
// What a doc names (outside ``` fences unless said):
//   1. A path: a word that starts with stack/, md5opt/, tap/, tools/, bgp/, tests/ or docs/ and
//      is not the tail of a longer one (no letter, digit, '_', '.', '/', '-' or ':' before it:
//      //tools:x and bazel-bin/tools/x are no paths). It must be a file or a directory of the
//      tree, or a test named by its target (tests/unit/tcp_md5_test, whose .cc is). In a README
//      below the root, a backticked bare file name (`option.h`) names a file of its folder.
//      Not checked: paths in tools/bazel/, whose folders are repositories of their own
//      (WORKSPACE's local_repository), which a test of this one cannot have as data.
//   2. Our name: a backticked span that starts with A::b (C has no ::; std:: aside), or with
//      an identifier that is in the first cell of a table whose header's first cell is "ours"
//      (kernel-map.md), or that a parenthesis of our paths follows: `parse_tcp` (stack/x.cc).
//      Arguments after it are not part of it: `Tcp::listen(port, backlog)` is Tcp::listen.
//      Where it must be: in the files of the parenthesis right after it; in an "ours" cell
//      without one, in those of the next parenthesis of that cell that holds paths; else
//      anywhere in the code.
//   3. An excerpt: inside a fence, a line `// path/file.cc: Name ...` names a file and a
//      function in it; each line after it, up to the next such line or the fence's end (blank
//      lines and `...` aside), must be a line of that function's definition, spaces trimmed.
// A name is in a file when, leading namespaces dropped (md5opt::KeyTable::add is
// KeyTable::add), `f` is a whole word of its code (comments stripped), or `C::m` is written so
// there or m is a word of the body of a class, struct or enum C defined there; a `.x` after
// it (StackConfig::tcp.sack) must be a word somewhere in the code. A function's definition
// runs from a line at column 0 holding `C::m(` (or `f(`) to the next line that is "}";
// without one, the whole file stands in for it.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace tapstack::testing {
namespace {

namespace fs = std::filesystem;

// Other repositories (WORKSPACE's local_repository stand-ins): not data, not checked.
constexpr std::string_view kOtherRepositories = "tools/bazel/";

constexpr std::string_view kTopDirs[] = {"stack/", "md5opt/", "tap/", "tools/",
                                         "bgp/",   "tests/",  "docs/"};

bool is_ident(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

bool is_path_char(char c) {
  return is_ident(c) || c == '.' || c == '/' || c == '-';
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

std::string_view trim(std::string_view text) {
  const size_t first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

bool ours(std::string_view path) {
  return std::any_of(std::begin(kTopDirs), std::end(kTopDirs),
                     [&](std::string_view top) { return starts_with(path, top); });
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> split(std::string_view text, std::string_view separator) {
  std::vector<std::string> parts;
  for (size_t at = 0;;) {
    const size_t next = text.find(separator, at);
    parts.emplace_back(text.substr(at, next - at));
    if (next == std::string_view::npos) return parts;
    at = next + separator.size();
  }
}

// Where `word` occurs in text with no identifier character on either side.
bool has_word(std::string_view text, std::string_view word) {
  for (size_t at = text.find(word); at != std::string_view::npos; at = text.find(word, at + 1)) {
    const size_t end = at + word.size();
    if ((at == 0 || !is_ident(text[at - 1])) && (end == text.size() || !is_ident(text[end]))) {
      return true;
    }
  }
  return false;
}

// The text with // and /* */ comments removed, string and character literals kept.
std::string strip_comments(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"' || c == '\'') {
      size_t end = i + 1;
      while (end < text.size() && text[end] != c && text[end] != '\n')
        end += text[end] == '\\' ? 2 : 1;
      end = std::min(end, text.size() - 1);
      out.append(text, i, end - i + 1);
      i = end;
    } else if (text.compare(i, 2, "//") == 0) {
      while (i + 1 < text.size() && text[i + 1] != '\n') ++i;
    } else if (text.compare(i, 2, "/*") == 0) {
      const size_t end = text.find("*/", i + 2);
      i = end == std::string::npos ? text.size() : end + 1;
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

// The source tree as the test's runfiles hold it.
class Tree {
 public:
  explicit Tree(const fs::path& root) : root_(root) {
    for (std::string_view top : kTopDirs) {
      const fs::path dir = root / top;
      if (!fs::is_directory(dir)) continue;
      for (const auto& entry : fs::recursive_directory_iterator(dir)) {
        const std::string path = entry.path().lexically_relative(root).generic_string();
        if (fs::is_regular_file(entry.path())) {
          files_.insert(path);
          if (ends_with(path, ".cc") || ends_with(path, ".h")) sources_.push_back(path);
        }
      }
    }
    for (const std::string& path : sources_) {
      const std::string& text = code(path);
      for (size_t at = text.find("namespace "); at != std::string::npos;
           at = text.find("namespace ", at + 1)) {
        if (at > 0 && is_ident(text[at - 1])) continue;
        size_t end = at + 10;
        while (end < text.size() && (is_ident(text[end]) || text[end] == ':')) ++end;
        for (const std::string& part : split(text.substr(at + 10, end - at - 10), "::")) {
          if (!part.empty()) namespaces_.insert(part);
        }
      }
    }
  }

  bool is_file(const std::string& path) const { return files_.count(path) > 0; }

  // A file or a directory holding one, or a test target named by its path.
  bool exists(std::string path) const {
    while (!path.empty() && (path.back() == '/' || path.back() == '.')) path.pop_back();
    if (files_.count(path) || files_.count(path + ".cc")) return true;
    const auto next = files_.lower_bound(path + "/");
    return next != files_.end() && starts_with(*next, path + "/");
  }

  const std::vector<std::string>& sources() const { return sources_; }
  size_t file_count() const { return files_.size(); }
  bool is_namespace(const std::string& name) const { return namespaces_.count(name) > 0; }

  const std::string& raw(const std::string& path) const {
    auto it = raw_.find(path);
    if (it == raw_.end()) {
      std::ifstream in(root_ / path);
      std::ostringstream text;
      text << in.rdbuf();
      it = raw_.emplace(path, text.str()).first;
    }
    return it->second;
  }

  const std::string& code(const std::string& path) const {
    auto it = code_.find(path);
    if (it == code_.end()) it = code_.emplace(path, strip_comments(raw(path))).first;
    return it->second;
  }

 private:
  fs::path root_;
  std::set<std::string> files_;
  std::vector<std::string> sources_;
  std::set<std::string> namespaces_;
  mutable std::map<std::string, std::string> raw_;
  mutable std::map<std::string, std::string> code_;
};

// The bodies of class, struct or enum `name` defined in text (declarations skipped).
std::vector<std::string_view> type_bodies(std::string_view text, std::string_view name) {
  std::vector<std::string_view> bodies;
  for (std::string_view keyword : {"class ", "struct ", "enum "}) {
    const std::string pattern = fmt::format("{}{}", keyword, name);
    for (size_t at = text.find(pattern); at != std::string_view::npos;
         at = text.find(pattern, at + 1)) {
      const size_t end = at + pattern.size();
      if ((at > 0 && is_ident(text[at - 1])) || (end < text.size() && is_ident(text[end])))
        continue;
      const size_t open = text.find_first_of("{;", end);
      if (open == std::string_view::npos || text[open] == ';') continue;
      int depth = 0;
      for (size_t i = open; i < text.size(); ++i) {
        if (text[i] == '{') ++depth;
        if (text[i] == '}' && --depth == 0) {
          bodies.push_back(text.substr(open, i - open));
          break;
        }
      }
    }
  }
  return bodies;
}

struct Name {
  std::vector<std::string> parts;   // after the leading namespaces: {"Tcp", "input"}
  std::vector<std::string> fields;  // after the first '.': StackConfig::tcp.sack gives {"sack"}
  std::string written;              // as the doc has it, arguments aside
};

Name parse_name(const Tree& tree, std::string_view head) {
  Name name{{}, {}, std::string(head)};
  std::vector<std::string> dotted = split(head, ".");
  name.fields.assign(dotted.begin() + 1, dotted.end());
  name.parts = split(dotted[0], "::");
  while (name.parts.size() > 1 && tree.is_namespace(name.parts.front())) {
    name.parts.erase(name.parts.begin());
  }
  return name;
}

// "C::m" of the last two parts, or "f".
std::string qualified(const Name& name) {
  return name.parts.size() == 1
             ? name.parts[0]
             : fmt::format("{}::{}", name.parts[name.parts.size() - 2], name.parts.back());
}

bool found_in(const Tree& tree, const Name& name, const std::vector<std::string>& files) {
  const std::vector<std::string>& where = files.empty() ? tree.sources() : files;
  const std::string q = qualified(name);
  bool found = std::any_of(where.begin(), where.end(), [&](const std::string& path) {
    const std::string& text = tree.code(path);
    if (has_word(text, q)) return true;
    if (name.parts.size() == 1) return false;
    for (std::string_view body : type_bodies(text, name.parts[name.parts.size() - 2])) {
      if (has_word(body, name.parts.back())) return true;
    }
    return false;
  });
  for (const std::string& field : name.fields) {
    found = found &&
            std::any_of(tree.sources().begin(), tree.sources().end(),
                        [&](const std::string& path) { return has_word(tree.code(path), field); });
  }
  return found;
}

// The trimmed lines of the definitions of `name` in path, or of the whole file without one.
std::set<std::string> definition_lines(const Tree& tree, const std::string& path,
                                       const Name& name) {
  const std::vector<std::string> lines = split_lines(tree.raw(path));
  const std::string call = qualified(name) + "(";
  std::set<std::string> out;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (line.empty() || line[0] == ' ' || starts_with(line, "//")) continue;
    const size_t at = line.find(call);
    if (at == std::string::npos || (at > 0 && (is_ident(line[at - 1]) || line[at - 1] == ':'))) {
      continue;
    }
    for (; i < lines.size() && lines[i] != "}"; ++i) out.emplace(trim(lines[i]));
  }
  if (out.empty()) {
    for (const std::string& line : lines) out.emplace(trim(line));
  }
  return out;
}

// The name a backticked span starts with: A::b::c(.d)* or a(.d)*, followed by nothing or by
// an argument list.
std::optional<std::string> span_name(std::string_view span) {
  span = trim(span);
  size_t end = 0;
  bool expect_ident = true;
  while (end < span.size()) {
    if (expect_ident) {
      const size_t start = end;
      while (end < span.size() && is_ident(span[end])) ++end;
      if (end == start || (span[start] >= '0' && span[start] <= '9')) return std::nullopt;
      expect_ident = false;
    } else if (span.compare(end, 2, "::") == 0) {
      end += 2;
      expect_ident = true;
    } else if (span[end] == '.') {
      end += 1;
      expect_ident = true;
    } else {
      break;
    }
  }
  if (expect_ident) return std::nullopt;
  if (end < span.size() && span[end] != '(') return std::nullopt;
  return std::string(span.substr(0, end));
}

// The paths in a parenthesis starting at text's first non-blank character, or nothing.
std::optional<std::vector<std::string>> parenthesis_paths(std::string_view text) {
  text = text.substr(std::min(text.size(), text.find_first_not_of(' ')));
  if (text.empty() || text[0] != '(') return std::nullopt;
  const size_t close = text.find_first_of("()", 1);
  if (close == std::string_view::npos || text[close] != ')') return std::nullopt;
  std::vector<std::string> paths;
  std::string word;
  for (const char c : text.substr(1, close)) {
    if (c == ',' || c == ';' || c == ' ' || c == ')') {
      if (word.find('/') != std::string::npos) paths.push_back(word);
      word.clear();
    } else {
      word += c;
    }
  }
  return paths;
}

struct Report {
  std::vector<std::string> stale;
  size_t names = 0, paths = 0, excerpt_lines = 0;
};

class DocChecker {
 public:
  DocChecker(const Tree& tree, std::string doc, Report& report)
      : tree_(tree), doc_(std::move(doc)), report_(report) {
    const size_t slash = doc_.rfind('/');
    folder_ = slash == std::string::npos ? "" : doc_.substr(0, slash + 1);
  }

  void check() {
    const std::vector<std::string> lines = split_lines(tree_.raw(doc_));
    bool in_fence = false;
    table_header_.reset();
    for (line_ = 1; line_ <= lines.size(); ++line_) {
      const std::string& line = lines[line_ - 1];
      const std::string_view text = trim(line);
      if (starts_with(text, "```")) {
        in_fence = !in_fence;
        excerpt_.reset();
        continue;
      }
      if (in_fence) {
        excerpt_line(text);
        continue;
      }
      if (starts_with(text, "|")) {
        if (!table_header_) table_header_ = std::string(trim(split(text.substr(1), "|")[0]));
      } else {
        table_header_.reset();
      }
      check_paths(line);
      check_spans(line);
    }
  }

 private:
  void stale(const std::string& what) {
    report_.stale.push_back(fmt::format("{}:{}: {}", doc_, line_, what));
  }

  void check_paths(const std::string& line) {
    for (size_t at = 0; at < line.size(); ++at) {
      if (at > 0 && (is_path_char(line[at - 1]) || line[at - 1] == ':')) continue;
      if (!ours(std::string_view(line).substr(at))) continue;
      size_t end = at;
      while (end < line.size() && is_path_char(line[end])) ++end;
      std::string path = line.substr(at, end - at);
      while (path.back() == '.' || path.back() == '-') path.pop_back();
      at = end;
      if (starts_with(path, kOtherRepositories)) continue;
      ++report_.paths;
      if (!tree_.exists(path)) stale(fmt::format("{} is no file or directory of the tree", path));
    }
  }

  void check_spans(const std::string& line) {
    const bool ours_table = table_header_ == "ours";
    const size_t first_cell_end = ours_table ? line.find('|', line.find('|') + 1) : 0;
    for (size_t at = line.find('`'); at != std::string::npos; at = line.find('`', at)) {
      size_t run = at;
      while (run < line.size() && line[run] == '`') ++run;
      const std::string fence = line.substr(at, run - at);
      size_t close = line.find(fence, run);
      while (close != std::string::npos && close + fence.size() < line.size() &&
             line[close + fence.size()] == '`') {
        close = line.find(fence, close + fence.size() + 1);
      }
      if (close == std::string::npos) return;
      const std::string span = line.substr(run, close - run);
      at = close + fence.size();
      check_span(span, line, at, ours_table && at <= first_cell_end ? first_cell_end : 0);
    }
  }

  // A span ending at `after`; cell_end is where the "ours" cell it is in ends, or 0.
  void check_span(const std::string& span, const std::string& line, size_t after, size_t cell_end) {
    if (!folder_.empty() && span.find('/') == std::string::npos &&
        span.find(' ') == std::string::npos && (ends_with(span, ".cc") || ends_with(span, ".h"))) {
      ++report_.paths;
      if (!tree_.is_file(folder_ + span)) {
        stale(fmt::format("`{}` is no file of {}", span, folder_));
      }
      return;
    }
    const std::optional<std::string> head = span_name(span);
    if (!head) return;
    std::optional<std::vector<std::string>> paths =
        parenthesis_paths(std::string_view(line).substr(after));
    if (cell_end > 0 && (!paths || paths->empty())) {
      for (size_t open = line.find('(', after); open < cell_end; open = line.find('(', open + 1)) {
        paths = parenthesis_paths(std::string_view(line).substr(open, cell_end - open));
        if (paths && !paths->empty()) break;
      }
    }
    const bool our_paths =
        paths && !paths->empty() &&
        std::all_of(paths->begin(), paths->end(), [](const std::string& p) { return ours(p); });
    const bool qualified_name = head->find("::") != std::string::npos;
    if (qualified_name ? starts_with(*head, "std::") : !(our_paths || cell_end > 0)) return;
    std::vector<std::string> files;
    if (our_paths) {
      for (const std::string& path : *paths) {
        if (tree_.is_file(path)) files.push_back(path);
      }
      if (files.empty()) return;  // the missing path is reported by check_paths
    }
    ++report_.names;
    if (found_in(tree_, parse_name(tree_, *head), files)) return;
    if (files.empty()) {
      stale(fmt::format("`{}` is nowhere in the code of the tree", *head));
    } else {
      std::string list;
      for (const std::string& file : files) list += (list.empty() ? "" : ", ") + file;
      stale(fmt::format("`{}` is not in {}, where the doc says it is", *head, list));
    }
  }

  void excerpt_line(std::string_view text) {
    if (starts_with(text, "// ")) {
      const std::string_view rest = text.substr(3);
      const size_t colon = rest.find(": ");
      const std::string path(rest.substr(0, colon));
      if (colon != std::string_view::npos && ours(path) &&
          (ends_with(path, ".cc") || ends_with(path, ".h"))) {
        std::string_view name = trim(rest.substr(colon + 2));
        size_t end = 0;
        while (end < name.size() && (is_ident(name[end]) || name[end] == ':')) ++end;
        name = name.substr(0, end);
        excerpt_.reset();
        ++report_.names;
        if (!tree_.is_file(path)) return stale(fmt::format("excerpt from {}, no such file", path));
        const Name parsed = parse_name(tree_, name);
        if (!found_in(tree_, parsed, {path})) {
          return stale(fmt::format("excerpt of `{}` from {}, which has no {}", name, path, name));
        }
        excerpt_ = Excerpt{path, std::string(name), definition_lines(tree_, path, parsed)};
        return;
      }
    }
    if (!excerpt_ || text.empty() || text == "...") return;
    ++report_.excerpt_lines;
    if (!excerpt_->lines.count(std::string(text))) {
      stale(fmt::format("the excerpt of `{}` ({}) shows a line it does not have: {}",
                        excerpt_->name, excerpt_->path, text));
    }
  }

  struct Excerpt {
    std::string path;
    std::string name;
    std::set<std::string> lines;
  };

  const Tree& tree_;
  std::string doc_;
  std::string folder_;  // "md5opt/" for md5opt/README.md, "" for the root's and docs/
  Report& report_;
  size_t line_ = 0;
  std::optional<std::string> table_header_;  // first cell of the current table's header
  std::optional<Excerpt> excerpt_;
};

fs::path runfiles_root() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  if (!srcdir || !workspace) return fs::current_path();  // by hand, from the tree itself
  return fs::path(srcdir) / workspace;
}

TEST_CASE("every file, function and excerpt the docs name for our code exists in the tree") {
  const fs::path root = runfiles_root();
  const Tree tree(root);
  REQUIRE_MESSAGE(tree.is_file("stack/stack.cc"), "the sources are not in " << root);

  std::vector<std::string> docs = {"README.md", "md5opt/README.md", "tests/fuzz/README.md",
                                   "tests/sim/README.md"};
  for (const auto& entry : fs::directory_iterator(root / "docs")) {
    if (entry.path().extension() == ".md")
      docs.push_back("docs/" + entry.path().filename().string());
  }
  std::sort(docs.begin() + 4, docs.end());
  REQUIRE(docs.size() > 8);

  Report report;
  for (const std::string& doc : docs) {
    REQUIRE_MESSAGE(fs::is_regular_file(root / doc), "cannot read " << doc);
    DocChecker(tree, doc, report).check();
  }
  fmt::print("{} docs: {} names, {} paths, {} excerpt lines checked against {} files\n",
             docs.size(), report.names, report.paths, report.excerpt_lines, tree.file_count());
  for (const std::string& line : report.stale) fmt::print("{}\n", line);
  CHECK_MESSAGE(report.stale.empty(),
                fmt::format("{} stale names in the docs (listed above, doc:line: what)",
                            report.stale.size()));
}

}  // namespace
}  // namespace tapstack::testing
