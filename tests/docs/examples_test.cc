// Every example the user is shown is run, so that none can break silently: each ```sh block of
// README.md and docs/*.md, and the example section of `tapstack <command> --help` (for every
// command `tapstack --help` lists) and of `kernel-peer --help`.
//
// What runs:
//   - Markdown: a block fenced with ```sh (or ```bash, ```shell) runs, unless the line before
//     the fence is `<!-- example: not run (REASON) -->`. Other fences (```text, ```cpp, a bare
//     ```) never run; use them for output and code.
//   - --help: a line that starts with "example" opens an example's heading, which ends with
//     the first line that ends in ':' (the same line or a later one); the lines after it that
//     start with two spaces are the example (the two spaces removed). Every help text must
//     have at least one.
// How it runs: the text goes to `sh -e` as it stands, in a fresh network, PID and mount
// namespace (unshare --net --pid --fork --mount-proc), with a private directory as its working
// directory, and a time limit. It passes when it exits 0 in time and leaves no
// process running behind it. Mappings, all textual or by the environment:
//   - `bazel build ...` lines are dropped (the binaries are this test's data); any other line
//     that starts with `bazel` is an error: such a block must be marked not run;
//   - `bazel-bin/` resolves through a symlink in the working directory to this test's
//     runfiles, where tools/tapstack and tools/kernel-peer are;
//   - PATH starts with the runfiles' tools/, so a bare `tapstack` or `kernel-peer` (as --help
//     examples write them) is the binary under test;
//   - /tmp is a tmpfs of the block's own (mounted in its mount namespace), so files an example
//     writes there are private to it and gone afterwards.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "tests/support/netns.h"
#include "tests/support/subprocess.h"

namespace tapstack::testing {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kNotRunMarker = "<!-- example: not run (";
constexpr milliseconds kBlockTimeLimit{30'000};

struct Example {
  std::string source;  // "README.md", "tapstack up --help"
  size_t line = 0;     // of the example's first line in source
  std::string text;
  std::optional<std::string> not_run_reason;
};

std::string runfiles_root() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  if (!srcdir || !workspace) return fs::current_path().string();  // by hand, from runfiles
  return fmt::format("{}/{}", srcdir, workspace);
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

std::string_view trim(std::string_view text) {
  const size_t first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The ```sh blocks of one Markdown file; a stale not-run marker (not right above such a
// fence) is a failure of its own.
std::vector<Example> markdown_examples(const std::string& name, const std::string& text) {
  const std::vector<std::string> lines = split_lines(text);
  std::vector<Example> examples;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (starts_with(trim(lines[i]), kNotRunMarker)) {
      const bool above_sh_fence =
          i + 1 < lines.size() &&
          (lines[i + 1] == "```sh" || lines[i + 1] == "```bash" || lines[i + 1] == "```shell");
      CHECK_MESSAGE(above_sh_fence, fmt::format("{}:{}: a not-run marker must be the line right "
                                                "above a ```sh fence",
                                                name, i + 1));
    }
    // A fence is ``` and an optional tag; ```` ```sh ```` in running text is not one.
    if (!starts_with(lines[i], "```") || lines[i].find('`', 3) != std::string::npos) continue;
    const std::string tag(trim(std::string_view(lines[i]).substr(3)));
    size_t end = i + 1;
    while (end < lines.size() && !starts_with(lines[end], "```")) ++end;
    if (tag == "sh" || tag == "bash" || tag == "shell") {
      Example example{name, i + 2, "", std::nullopt};
      for (size_t k = i + 1; k < end; ++k) example.text += lines[k] + "\n";
      const std::string_view above = i > 0 ? trim(lines[i - 1]) : "";
      if (starts_with(above, kNotRunMarker)) {
        const size_t close = above.rfind(") -->");
        const std::string reason(
            close == std::string_view::npos || close < kNotRunMarker.size()
                ? ""
                : above.substr(kNotRunMarker.size(), close - kNotRunMarker.size()));
        CHECK_MESSAGE(!reason.empty(), fmt::format("{}:{}: write the marker as {}REASON) -->", name,
                                                   i, kNotRunMarker));
        example.not_run_reason = reason;
      }
      examples.push_back(example);
    }
    i = end;
  }
  return examples;
}

// The examples of one --help text (see the top of the file for the marker).
std::vector<Example> help_examples(const std::string& name, const std::string& text) {
  const std::vector<std::string> lines = split_lines(text);
  std::vector<Example> examples;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!starts_with(lines[i], "example")) continue;
    while (i < lines.size() && (lines[i].empty() || lines[i].back() != ':')) ++i;
    if (i == lines.size()) break;
    Example example{name, i + 2, "", std::nullopt};
    size_t k = i + 1;
    for (; k < lines.size() && starts_with(lines[k], "  "); ++k) {
      example.text += lines[k].substr(2) + "\n";
    }
    examples.push_back(example);
    i = k - 1;
  }
  return examples;
}

std::string help_text(const std::vector<std::string>& argv) {
  const ProcessResult result = run_process(argv, milliseconds(10'000));
  REQUIRE_MESSAGE(result.exit_code == 0,
                  fmt::format("{}: {}\n{}", fmt::join(argv, " "), result.describe(), result.err));
  return result.out;
}

// The command names `tapstack --help` lists under "commands:".
std::vector<std::string> tapstack_commands(const std::string& help) {
  std::vector<std::string> names;
  bool in_list = false;
  for (const std::string& line : split_lines(help)) {
    if (line == "commands:") {
      in_list = true;
    } else if (in_list && starts_with(line, "  ")) {
      names.emplace_back(trim(line).substr(0, trim(line).find(' ')));
    } else if (in_list) {
      break;
    }
  }
  return names;
}

// The block as it will run, or an error saying why it cannot.
std::variant<std::string, std::string> prepare(const Example& example) {
  std::string script;
  bool continues_dropped = false;
  for (const std::string& line : split_lines(example.text)) {
    const std::string_view command = trim(line);
    const bool dropped =
        continues_dropped || starts_with(command, "bazel build ") || command == "bazel build";
    continues_dropped = dropped && !command.empty() && command.back() == '\\';
    if (dropped) continue;
    if (starts_with(command, "bazel ")) {
      return std::variant<std::string, std::string>(
          std::in_place_index<1>,
          fmt::format("runs '{}': the test cannot; mark the block "
                      "<!-- example: not run (REASON) --> or use bazel build and bazel-bin/",
                      command));
    }
    script += line + "\n";
  }
  return std::variant<std::string, std::string>(std::in_place_index<0>, script);
}

// pid 1 of the example's namespaces: runs the block, then fails it if it left anything
// running (what an example that does not stop its tapstack leaves behind); a second look a
// second later lets processes just killed finish exiting.
constexpr std::string_view kWrapper = R"(exec 2>&1
mount -t tmpfs -o size=64m example-tmp /tmp || exit 126
sh -e ./example.sh
status=$?
running() {
  for d in /proc/[0-9]*; do
    [ "${d#/proc/}" = 1 ] && continue
    c=$(tr '\0' ' ' < "$d/cmdline" 2>/dev/null)
    [ -n "$c" ] && echo "  pid ${d#/proc/}: $c"
  done
}
# Called with a redirection, not in $(...), so that no subshell of ours is in the list.
running > ./.running
[ -s ./.running ] && sleep 1 && running > ./.running
if [ -s ./.running ]; then
  echo "example-runner: still running when the example ended:"
  cat ./.running
  exit 125
fi
exit $status
)";

std::string last_lines(const std::string& text, size_t count) {
  const std::vector<std::string> lines = split_lines(text);
  std::string out;
  for (size_t i = lines.size() > count ? lines.size() - count : 0; i < lines.size(); ++i) {
    out += "    | " + lines[i] + "\n";
  }
  return out;
}

struct Outcome {
  bool ok = false;
  std::string report;  // on failure: what ran, how it ended, its last lines
};

Outcome run_example(const Example& example, size_t index) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  // Not below /tmp, which the example gets a tmpfs of its own for.
  const std::string dir = fmt::format("{}/example-{}", tmp ? tmp : "/var/tmp", index);
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::create_directory_symlink(runfiles_root(), dir + "/bazel-bin");
  const auto prepared = prepare(example);
  if (prepared.index() == 1) return {false, std::get<1>(prepared)};
  std::ofstream(dir + "/example.sh") << std::get<0>(prepared);

  const std::string path = fmt::format(
      "{}/tools:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", runfiles_root());
  const ProcessResult result = run_process(
      {"/usr/bin/env", "PATH=" + path, "unshare", "--net", "--pid", "--fork", "--mount-proc",
       "--kill-child", "--wd=" + dir, "sh", "-c", std::string(kWrapper)},
      kBlockTimeLimit);
  const std::string output = result.out + result.err;
  if (result.exit_code == 0) return {true, ""};
  std::string how =
      result.timed_out
          ? fmt::format("did not end within {} s (killed)", kBlockTimeLimit.count() / 1000)
      : result.exit_code == 125 && output.find("example-runner: still running") != std::string::npos
          ? "left processes running"
          : result.describe();
  return {false, fmt::format("{}\n  ran (as sh -e in {}):\n{}  last lines of its output:\n{}", how,
                             dir, last_lines(std::get<0>(prepared), 1000), last_lines(output, 15))};
}

TEST_CASE("every example of the README, docs/ and --help runs and exits 0") {
  const std::string root = runfiles_root();
  std::vector<Example> examples;
  std::vector<std::string> markdown = {"README.md"};
  for (const auto& entry : fs::directory_iterator(root + "/docs")) {
    if (entry.path().extension() == ".md")
      markdown.push_back("docs/" + entry.path().filename().string());
  }
  std::sort(markdown.begin() + 1, markdown.end());
  REQUIRE(markdown.size() > 1);
  for (const std::string& name : markdown) {
    for (Example& example : markdown_examples(name, read_file(root + "/" + name))) {
      examples.push_back(std::move(example));
    }
  }

  const std::string tapstack = root + "/tools/tapstack";
  const std::vector<std::string> commands = tapstack_commands(help_text({tapstack, "--help"}));
  REQUIRE(!commands.empty());
  std::vector<std::pair<std::string, std::vector<std::string>>> helps;
  for (const std::string& command : commands) {
    helps.push_back({fmt::format("tapstack {} --help", command), {tapstack, command, "--help"}});
  }
  helps.push_back({"kernel-peer --help", {root + "/tools/kernel-peer", "--help"}});
  for (const auto& [name, argv] : helps) {
    std::vector<Example> found = help_examples(name, help_text(argv));
    CHECK_MESSAGE(!found.empty(), fmt::format("{} shows no example (a line 'example ...:' and "
                                              "the command indented by two spaces)",
                                              name));
    for (Example& example : found) examples.push_back(std::move(example));
  }

  if (const auto reason = kernel_tests_unavailable()) skip_test(*reason);

  size_t passed = 0;
  size_t failed = 0;
  size_t not_run = 0;
  for (size_t i = 0; i < examples.size(); ++i) {
    const Example& example = examples[i];
    if (example.not_run_reason) {
      fmt::print("{}:{}: not run ({})\n", example.source, example.line, *example.not_run_reason);
      ++not_run;
      continue;
    }
    const auto started = std::chrono::steady_clock::now();
    const Outcome outcome = run_example(example, i);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    fmt::print("{}:{}: {} ({:.1f} s)\n", example.source, example.line, outcome.ok ? "OK" : "FAILED",
               seconds);
    if (outcome.ok) {
      ++passed;
    } else {
      ++failed;
      fmt::print("  {}\n", outcome.report);
    }
    std::fflush(stdout);
    CHECK_MESSAGE(outcome.ok,
                  fmt::format("{}:{}: FAILED, see above", example.source, example.line));
  }
  fmt::print("examples: {} OK, {} FAILED, {} not run (marked)\n", passed, failed, not_run);
  CHECK(passed > 0);
}

}  // namespace
}  // namespace tapstack::testing
