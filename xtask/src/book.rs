//! `cargo xtask book`: real transcripts of each chapter's demo, for the book.

use crate::{cargo, root, CHAPTERS};
use anyhow::{Context, Result};
use std::process::{Command, Stdio};

#[derive(clap::Args)]
pub struct Args {
    /// Only these chapters (e.g. ch05-uts); all of them by default
    chapters: Vec<String>,
    /// Run nothing: normalise the transcripts already written again (wrap
    /// them to the book's width), as if they had just been made
    #[arg(long)]
    reflow: bool,
    /// The normal user chapter 11's demo runs as, when this runs as root
    /// (default: the user sudo was run by, else nobody); also
    /// WORKSHOP_BOOK_USER
    #[arg(long, value_name = "USER")]
    user: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    let dir = root().join("book/src/transcripts");
    if args.reflow {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "txt") {
                let text = std::fs::read_to_string(&path)?;
                let root = root().display().to_string();
                std::fs::write(&path, normalise(&text, &root))
                    .with_context(|| format!("write {}", path.display()))?;
            }
        }
        return Ok(());
    }
    for chapter in &args.chapters {
        anyhow::ensure!(
            CHAPTERS.contains(&chapter.as_str()) || chapter == MYBOX,
            "no chapter {chapter}: the chapters are {}, and {MYBOX}",
            CHAPTERS.join(", ")
        );
    }
    let chapters: Vec<&str> = CHAPTERS
        .into_iter()
        .filter(|c| args.chapters.is_empty() || args.chapters.iter().any(|a| a == c))
        .collect();
    let mybox = args.chapters.is_empty() || args.chapters.iter().any(|a| a == MYBOX);
    let status = cargo()
        .args(["build", "--quiet"])
        .args(chapters.iter().flat_map(|c| ["--package", c]))
        .args(
            mybox
                .then_some(["--package", "solutions", "--bin", "solved-mybox"])
                .into_iter()
                .flatten(),
        )
        .status()?;
    anyhow::ensure!(status.success(), "cargo build of the chapters failed");
    std::fs::create_dir_all(&dir)?;
    for chapter in chapters.into_iter().chain(mybox.then_some(MYBOX)) {
        let user = args
            .user
            .clone()
            .or_else(|| std::env::var("WORKSHOP_BOOK_USER").ok());
        let transcript = transcript(chapter, user.as_deref())?;
        let path = dir.join(format!("{chapter}.txt"));
        std::fs::write(&path, transcript).with_context(|| format!("write {}", path.display()))?;
        eprintln!(
            "wrote {}",
            path.strip_prefix(root()).unwrap_or(&path).display()
        );
    }
    if Command::new("mdbook")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        crate::translation::build_books()?;
    } else {
        eprintln!(
            "mdbook is not installed: transcripts written, book not built (cargo install mdbook)"
        );
    }
    Ok(())
}

/// The chapters whose demo runs in a network namespace of its own.
const NET: &str = "ch06-net";
const BRIDGE: &str = "ch10-bridge";
/// Chapter 12's demo lays chapter 7's veth and chapter 10's bridge.
const HARDENED: &str = "ch12-hardened";
/// Chapter 11's demo runs as a normal user: that is the chapter.
const ROOTLESS: &str = "ch11-rootless";

/// The closing page's transcript (book/src/mybox.md): the solutions' mybox,
/// run the way a student runs their own, in a network namespace of its own.
const MYBOX: &str = "mybox";
const MYBOX_RUNS: &str = r#"b=$MYBOX_BIN
echo '$ sudo unshare --net target/debug/solved-mybox -- ps -e'
$b -- ps -e
echo
echo '$ sudo unshare --net target/debug/solved-mybox \'
echo '    --hostname mine --network veth --pids-limit 4 -- sh -c "$SCRIPT"'
$b --hostname mine --network veth --pids-limit 4 -- sh -c "$SCRIPT"
echo "(mybox exited $?)""#;
/// What the container runs in the second example (`$SCRIPT`).
const MYBOX_SCRIPT: &str = r#"echo "PID $$ on $(hostname)"; echo / holds: $(ls /)
ip -4 addr show eth0 | grep inet
ping -c1 -W2 10.200.0.1 | head -2
( i=0; while [ $i -lt 5 ]; do sleep 1 & i=$((i+1)); echo "fork $i"; done ) 2>&1
exit 3"#;

/// Run a chapter's demo with narration and container output interleaved as a
/// student sees them (one pipe for both), colour off.
fn transcript(chapter: &str, user: Option<&str>) -> Result<String> {
    let bin = root().join("target/debug").join(chapter);
    // The network chapters lay veths (and chapter 10 a bridge, a masquerade
    // rule and ip_forward): run them in a network namespace of their own, so
    // that nothing they do reaches this machine's network.
    let mut argv: Vec<std::ffi::OsString> = Vec::new();
    if [NET, BRIDGE, HARDENED, MYBOX].contains(&chapter) {
        argv.extend(["unshare".into(), "--net".into()]);
    }
    // Chapter 11 runs as a normal user, never as root: who, and the
    // binary (and rootfs) where that user can reach them.
    let mut normal_user = None;
    if chapter == ROOTLESS {
        let mut runner = NormalUser::choose(user)?;
        argv.push(runner.binary(&bin)?.into_os_string());
        argv.extend(runner.extra_args.iter().map(Into::into));
        normal_user = Some(runner);
    } else if chapter == MYBOX {
        // The closing page: the container made of the exercises, solved.
        argv.extend(["sh".into(), "-c".into(), MYBOX_RUNS.into()]);
    } else if chapter == BRIDGE {
        // A host has lo up; a new namespace has not, and the demo fetches
        // its page from 127.0.0.1 through the published port.
        let run = format!("ip link set lo up && exec {}", bin.display());
        argv.extend(["sh".into(), "-c".into(), run.into()]);
    } else {
        argv.push(bin.clone().into());
    }
    if !nix::unistd::geteuid().is_root() && normal_user.is_none() {
        argv.insert(0, "--".into());
        argv.insert(0, "sudo".into());
    }
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    if let Some(runner) = &normal_user {
        runner.apply(&mut cmd);
    }
    let (read, write) = nix::unistd::pipe()?;
    let write2 = write.try_clone()?;
    let mut child = cmd
        .env("NO_COLOR", "1")
        .env("MYBOX_BIN", root().join("target/debug/solved-mybox"))
        .env("SCRIPT", MYBOX_SCRIPT)
        .stdin(Stdio::null())
        .stdout(Stdio::from(write))
        .stderr(Stdio::from(write2))
        .spawn()
        .with_context(|| format!("failed to run {}", bin.display()))?;
    drop(cmd);
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(read), &mut text)?;
    let status = child.wait()?;
    if let Some(runner) = &normal_user {
        runner.remove_copy();
    }
    anyhow::ensure!(
        status.success(),
        "{chapter} demo failed ({status}):\n{text}"
    );
    let shown = if chapter == MYBOX {
        format!("$ SCRIPT='{MYBOX_SCRIPT}'")
    } else if chapter == NET || chapter == HARDENED {
        format!("$ sudo unshare --net target/debug/{chapter}")
    } else if chapter == BRIDGE {
        format!("$ sudo unshare --net sh -c 'ip link set lo up; target/debug/{chapter}'")
    } else if let Some(runner) = &normal_user {
        format!(
            "$ target/debug/{chapter}   (as a normal user: {}, uid {}; no sudo)",
            runner.name, runner.uid
        )
    } else {
        format!("$ cargo run -p {chapter}")
    };
    let mut text = format!("{shown}\n{text}");
    if let Some(copy) = normal_user.as_ref().and_then(|r| r.copy.as_ref()) {
        // the copy's path is this run's, not the student's
        text = text.replace(&copy.display().to_string(), "target/debug/ch11-rootless");
    }
    Ok(normalise(&text, &root().display().to_string()))
}

/// The normal user chapter 11's demo runs as. Not root: the transcript
/// must show what a student without sudo sees. When `cargo xtask book`
/// itself runs as a normal user, that is the user; as root, the one given
/// (`--user`, WORKSHOP_BOOK_USER), else the one who ran sudo (SUDO_UID),
/// else `nobody`.
struct NormalUser {
    uid: u32,
    gid: u32,
    name: String,
    home: std::path::PathBuf,
    /// Whether we switch to this user (false: we are them already).
    switch: bool,
    /// A copy of the binary the user can reach (as testkit's
    /// run_as_nobody makes), when the workspace's is out of their reach.
    copy: Option<std::path::PathBuf>,
    /// `--rootfs PATH`, given to a copy (which cannot find target/ itself).
    extra_args: Vec<String>,
}

impl NormalUser {
    fn choose(asked: Option<&str>) -> Result<NormalUser> {
        use nix::unistd::{Uid, User};
        let me = Uid::current();
        let found = |user: User, switch: bool| NormalUser {
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            name: user.name,
            home: user.dir,
            switch,
            copy: None,
            extra_args: Vec::new(),
        };
        if !me.is_root() {
            let user = User::from_uid(me)?.context("who am I? (no passwd entry)")?;
            return Ok(found(user, false));
        }
        let user = if let Some(name) = asked {
            User::from_name(name)?
                .with_context(|| format!("--user {name}: no such user (getpwnam)"))?
        } else if let Some(uid) = std::env::var("SUDO_UID")
            .ok()
            .and_then(|u| u.parse::<u32>().ok())
            .filter(|u| *u != 0)
        {
            User::from_uid(Uid::from_raw(uid))?
                .with_context(|| format!("SUDO_UID {uid}: no passwd entry"))?
        } else {
            User::from_name("nobody")?.context("no user nobody to run chapter 11 as")?
        };
        anyhow::ensure!(
            !user.uid.is_root(),
            "chapter 11's demo must run as a normal user, not {}",
            user.name
        );
        Ok(found(user, true))
    }

    /// The binary to run: `bin` itself when the user can run it, else a
    /// copy in a directory of mode 0755 under /tmp.
    fn binary(&mut self, bin: &std::path::Path) -> Result<std::path::PathBuf> {
        if !self.switch || self.can_reach(bin) {
            return Ok(bin.to_path_buf());
        }
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("workshop-book-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        let copy = dir.join(bin.file_name().context("binary name")?);
        std::fs::copy(bin, &copy)
            .with_context(|| format!("copy {} to {}", bin.display(), copy.display()))?;
        let rootfs = root().join("target/rootfs");
        anyhow::ensure!(
            self.can_reach(&rootfs.join("bin/sh")),
            "{} cannot reach {}: run `cargo xtask book {ROOTLESS}` as a normal \
             user yourself, or --user one who can",
            self.name,
            rootfs.display()
        );
        self.extra_args = vec!["--rootfs".into(), rootfs.display().to_string()];
        self.copy = Some(copy.clone());
        Ok(copy)
    }

    /// Whether the user may run `path` (its every directory searchable):
    /// asked of the kernel, as them.
    fn can_reach(&self, path: &std::path::Path) -> bool {
        use std::os::unix::process::CommandExt;
        Command::new("test")
            .arg("-x")
            .arg(path)
            .uid(self.uid)
            .gid(self.gid)
            .status()
            .is_ok_and(|s| s.success())
    }

    fn apply(&self, cmd: &mut Command) {
        use std::os::unix::process::CommandExt;
        if self.switch {
            // std drops root's supplementary groups too (setgroups([]))
            cmd.uid(self.uid).gid(self.gid);
        }
        cmd.env("USER", &self.name)
            .env("LOGNAME", &self.name)
            .env("HOME", &self.home)
            .env_remove("XDG_RUNTIME_DIR") // root's, if any: not theirs
            .env_remove("SUDO_UID")
            .env_remove("SUDO_GID")
            .env_remove("SUDO_USER")
            .current_dir("/");
    }

    fn remove_copy(&self) {
        if let Some(dir) = self.copy.as_ref().and_then(|c| c.parent()) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The widest line of text, diagram or transcript the book shows: mdBook's
/// default 750-px column fits about 84 characters of code (the book widens
/// its column for rustfmt's 100-column code, book/theme/wide-code.css, but
/// 80 still fits a narrower window, and a terminal).
pub const WIDTH: usize = 80;

/// Make a real run's text fit the book, changing nothing it says: the
/// workspace path becomes `.`, the cgroup the tool happens to run in (on v1,
/// `/sys/fs/cgroup/memory/user.slice/...`) becomes `...`, as the pages write
/// it, and lines over [`WIDTH`] are wrapped (see `wrap`). Applying it twice
/// changes nothing more.
pub fn normalise(text: &str, root: &str) -> String {
    let text = shorten_cgroup_paths(&text.replace(root, "."));
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    let mut label = "";
    let mut carried = String::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            label = "";
        } else if line.len() > 3 && line.starts_with("   ") && !line[3..].starts_with(' ') {
            label = line[3..].split(' ').next().unwrap_or("");
        }
        let line = if carried.is_empty() {
            line.to_string()
        } else {
            let indent = line.len() - line.trim_start().len();
            format!(
                "{}{} {}",
                &line[..indent],
                std::mem::take(&mut carried),
                line.trim_start()
            )
        };
        let mut pieces = wrap(&line, label == "shell");
        // A note's sentence that went on to the next line: its wrapped end
        // joins that line rather than standing alone (reflowing the note).
        // Never what a side saw (a container line, the host's own line):
        // a measurement stays whole; notes beneath a host line reflow.
        let what_the_host_saw = line.starts_with("   host ");
        if pieces.len() > 1
            && !matches!(label, "container" | "shell" | "syscall")
            && !what_the_host_saw
        {
            let last = pieces.last().unwrap();
            let indent = last.len() - last.trim_start().len();
            let next = lines.get(i + 1).copied().unwrap_or("");
            // the next line holds more of the same text: as indented, and
            // not a line of its own (a label, a step, a blank line)
            let goes_on = indent > 3
                && !line.starts_with("━━")
                && next.len() - next.trim_start().len() == indent
                && !next.trim().is_empty()
                && !last.trim_end().ends_with(['.', ':', ';', '!', '?']);
            if goes_on {
                carried = pieces.pop().unwrap().trim_start().to_string();
            }
        }
        for piece in pieces {
            out.push_str(&piece);
            out.push('\n');
        }
    }
    out
}

/// `/sys/fs/cgroup/CONTROLLER/ANY/PATH/workshop-N` becomes
/// `/sys/fs/cgroup/CONTROLLER/.../workshop-N`: the part in between is the
/// cgroup the tool was started in, which differs from machine to machine.
fn shorten_cgroup_paths(text: &str) -> String {
    const MOUNT: &str = "/sys/fs/cgroup/";
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(MOUNT) {
        let (before, path) = rest.split_at(at + MOUNT.len());
        out.push_str(before);
        let end = path
            .find(|c: char| c.is_whitespace() || "\"',;)".contains(c))
            .unwrap_or(path.len());
        let (word, after) = path.split_at(end);
        match (word.split_once('/'), word.find("/workshop-")) {
            (Some((controller, _)), Some(ours)) if ours > controller.len() => {
                out.push_str(controller);
                out.push_str("/...");
                out.push_str(&word[ours..]);
            }
            _ => out.push_str(word),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// One line as lines of at most [`WIDTH`] characters, broken at spaces.
/// The pieces after the first start under the line's text: after a
/// narration label (`   host       ...`, the text starts after the first run
/// of two or more spaces), after a step's `━━ `, or at the line's own
/// indent. The breaks of a `shell` item's lines end in ` \`, as a shell
/// would continue them. A word longer than the width stays whole (verify
/// then reports it).
fn wrap(line: &str, shell: bool) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= WIDTH {
        return vec![line.to_string()];
    }
    let lead = chars.iter().take_while(|c| **c == ' ').count();
    let hang = if line.starts_with("━━ ") {
        3
    } else {
        // the end of the first run of 2+ spaces after the first word
        let word_end = (lead..chars.len())
            .find(|&i| chars[i] == ' ')
            .unwrap_or(chars.len());
        (word_end..chars.len().saturating_sub(1))
            .find(|&i| chars[i] == ' ' && chars[i + 1] == ' ')
            .map(|i| (i..chars.len()).find(|&j| chars[j] != ' ').unwrap_or(i))
            .filter(|&h| h <= WIDTH / 2)
            .unwrap_or(lead)
    };
    let marker = if shell { " \\" } else { "" };
    let mut out = Vec::new();
    let mut piece: Vec<char> = chars;
    loop {
        let limit = WIDTH - marker.len();
        if piece.len() <= WIDTH {
            out.push(piece.iter().collect());
            break;
        }
        // the last space at or before the limit that ends a word, beyond the hang
        let text_start = piece.iter().take_while(|c| **c == ' ').count().max(hang);
        let Some(at) = (text_start + 1..=limit.min(piece.len() - 1))
            .rev()
            .find(|&i| piece[i] == ' ' && piece[i - 1] != ' ')
        else {
            out.push(piece.iter().collect());
            break;
        };
        let head: String = piece[..at].iter().collect();
        out.push(format!("{}{marker}", head.trim_end()));
        let tail = piece[at..].iter().copied().skip_while(|c| *c == ' ');
        piece = std::iter::repeat_n(' ', hang).chain(tail).collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_narration_under_its_text() {
        let line = format!("   host       {}", "word ".repeat(30).trim_end());
        let lines = wrap(&line, false);
        assert!(lines.len() > 1);
        for l in &lines {
            assert!(l.chars().count() <= WIDTH, "{l:?}");
        }
        for l in &lines[1..] {
            assert!(l.starts_with(&" ".repeat(14)) && !l.starts_with(&" ".repeat(15)));
        }
        assert_eq!(
            lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" "),
            line.trim()
        );
    }

    #[test]
    fn shell_lines_continue_with_a_backslash() {
        let line = format!(
            "   shell      $ echo {}",
            "x".repeat(40) + " " + &"y".repeat(40)
        );
        let lines = wrap(&line, true);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].ends_with(" \\"));
        assert_eq!(lines[1], format!("{}{}", " ".repeat(14), "y".repeat(40)));
    }

    #[test]
    fn a_host_measurement_is_never_joined_with_the_note_below() {
        let text = "   host       the cgroup's counter: 0.61 s of CPU in 3.00 s  \u{2192}  20.2% of one CPU (limit 20%)\n              The scheduler lets the cgroup run 20 ms.\n";
        let text = text.replace("\\u{2192}", "\u{2192}");
        let out = normalise(&text, "/nowhere");
        assert!(
            out.lines().any(|l| l.trim() == "(limit 20%)"),
            "the measurement's end stays on a line of its own:\n{out}"
        );
    }

    #[test]
    fn a_note_broken_mid_sentence_is_reflowed_not_left_ragged() {
        let text = "   host       cgroup v1\n              A cgroup is a directory. Its files are the limits and the counters; the PIDs\n              written into its cgroup.procs are its members.\n";
        let out = normalise(text, "/nowhere");
        assert_eq!(
            out,
            "   host       cgroup v1\n              A cgroup is a directory. Its files are the limits and the\n              counters; the PIDs written into its cgroup.procs are its members.\n"
        );
        // a report's own lines (not indented) are never joined
        let report = format!("{}\nrebuilt in 1 s\n", "y ".repeat(45));
        assert_eq!(normalise(&report, "/nowhere").lines().count(), 3);
        // nor a step's title with the line after it
        let step = format!("━━ 2 · {}\n   syscall    x\n", "a ".repeat(40));
        assert!(normalise(&step, "/nowhere").contains("\n   syscall    x\n"));
        // nor a container's own output

        let output = format!(
            "   container  {}\n              and more\n",
            "x ".repeat(40)
        );
        assert_eq!(normalise(&output, "/nowhere").lines().count(), 3);
    }

    #[test]
    fn short_lines_and_unbreakable_words_stay() {
        assert_eq!(wrap("short", false), vec!["short".to_string()]);
        let long = "z".repeat(90);
        assert_eq!(wrap(&long, false), vec![long.clone()]);
    }

    #[test]
    fn normalising_twice_changes_nothing_more() {
        let text = "   shell      $ echo 32M > /sys/fs/cgroup/memory/process_api/20d9c48fe10452df012ee28f9213ad0a/workshop-27555/memory.limit_in_bytes\n━━ 2 · a veth pair: a virtual cable, one end on the host, the other in the container\n";
        let once = normalise(text, "/home/student/course");
        assert!(
            once.contains("/sys/fs/cgroup/memory/.../workshop-27555/memory.limit_in_bytes"),
            "{once}"
        );
        assert!(once.lines().all(|l| l.chars().count() <= WIDTH), "{once}");
        assert_eq!(normalise(&once, "/home/student/course"), once);
    }

    #[test]
    fn cgroup_paths_keep_what_is_ours() {
        for kept in [
            "/sys/fs/cgroup/cpu/workshop-1/tasks",
            "/sys/fs/cgroup/workshop/123/cpu.max",
            "/sys/fs/cgroup/unified",
        ] {
            assert_eq!(shorten_cgroup_paths(kept), kept);
        }
        assert_eq!(
            shorten_cgroup_paths("\"/sys/fs/cgroup/pids/a/b/workshop-7/pids.max\","),
            "\"/sys/fs/cgroup/pids/.../workshop-7/pids.max\","
        );
    }
}

/// mdBook's preprocessor for this book (book.toml names it): the code a page
/// quotes by anchor comes as it sits in its file, so a method quoted from an
/// `impl` block keeps the block's indent, and a doc comment's rustdoc link
/// (`[`Tasks::move_self_in`]`) shows its brackets. In every `rust` block,
/// remove the indent all its lines share and turn [`X`] into `X`.
/// mdBook first asks `supports RENDERER` (yes to all: it only edits the
/// markdown), then sends `[context, book]` as JSON and reads the book back.
pub fn preprocess(args: &[String]) -> Result<()> {
    if args.first().is_some_and(|a| a == "supports") {
        return Ok(());
    }
    let input: serde_json::Value = serde_json::from_reader(std::io::stdin().lock())
        .context("failed to read mdBook's [context, book] from stdin")?;
    let mut book = input
        .get(1)
        .cloned()
        .context("mdBook sent no book (want a JSON array [context, book])")?;
    if let Some(items) = book.get_mut("items") {
        edit_chapters(items);
    }
    serde_json::to_writer(std::io::stdout().lock(), &book)?;
    Ok(())
}

fn edit_chapters(items: &mut serde_json::Value) {
    for item in items.as_array_mut().into_iter().flatten() {
        if let Some(chapter) = item.get_mut("Chapter") {
            if let Some(content) = chapter.get("content").and_then(|c| c.as_str()) {
                chapter["content"] = tidy_rust_blocks(content).into();
            }
            if let Some(sub) = chapter.get_mut("sub_items") {
                edit_chapters(sub);
            }
        }
    }
}

/// The directive of mdbook-i18n-helpers that keeps the next block out of the
/// translation catalog: code, commands and program output stay as they are in
/// every language (only prose is translated).
const KEEP_UNTRANSLATED: &str = "<!-- i18n:skip -->\n\n";

/// A page's markdown with every ```rust block dedented and unlinked, and every
/// fenced block (at the margin) marked to stay untranslated.
fn tidy_rust_blocks(page: &str) -> String {
    let mut out = String::new();
    let mut block: Option<Vec<&str>> = None;
    let mut in_other_block = false;
    for line in page.split_inclusive('\n') {
        let fence = line.trim_end().starts_with("```");
        // A fenced block in a list item is indented like the item's text:
        // its mark too, to stay in the item.
        let indented_fence = !fence && line.trim_start_matches(' ').starts_with("```");
        match block.as_mut() {
            None if in_other_block => {
                out.push_str(line);
                // Only a bare fence closes a block: "```rust" inside is text.
                in_other_block =
                    !((fence || indented_fence) && line.trim().trim_matches('`').is_empty());
            }
            None if indented_fence => {
                let indent = &line[..line.len() - line.trim_start_matches(' ').len()];
                out.push_str(indent);
                out.push_str(KEEP_UNTRANSLATED.trim_end_matches('\n'));
                out.push_str("\n\n");
                out.push_str(line);
                in_other_block = true;
            }
            None => {
                let rust = line.trim_start_matches('`').starts_with("rust");
                if fence {
                    out.push_str(KEEP_UNTRANSLATED);
                    in_other_block = !rust;
                }
                out.push_str(line);
                if fence && rust {
                    block = Some(Vec::new());
                }
            }
            Some(lines) if !fence => lines.push(line),
            Some(lines) => {
                let indent = lines
                    .iter()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| l.len() - l.trim_start_matches(' ').len())
                    .min()
                    .unwrap_or(0);
                for l in lines.iter() {
                    let l = if l.trim().is_empty() { l } else { &l[indent..] };
                    if l.trim_start().starts_with("//") {
                        out.push_str(&unlink(l));
                    } else {
                        out.push_str(l);
                    }
                }
                out.push_str(line);
                block = None;
            }
        }
    }
    if let Some(lines) = block {
        lines.iter().for_each(|l| out.push_str(l)); // an unclosed block: as it was
    }
    out
}

/// [`X`] (a rustdoc link) as `X`; a link with a target, [`X`](url), stays.
fn unlink(comment: &str) -> String {
    let mut out = String::new();
    let mut rest = comment;
    while let Some(at) = rest.find("[`") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        match after[1..].find('`').map(|end| end + 2) {
            Some(end) if after[end..].starts_with(']') && !after[end + 1..].starts_with('(') => {
                out.push_str(&after[..end]);
                rest = &after[end + 1..];
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod preprocess_tests {
    use super::*;

    #[test]
    fn quoted_methods_lose_their_impl_indent_and_links() {
        let page = "text [`kept`] in prose\n```rust,ignore\n    /// first act is [`Tasks::move_self_in`], see [`x`](y).\n    pub fn f() {\n\n        1\n    }\n```\n```text\n    kept\n```\n";
        assert_eq!(
            tidy_rust_blocks(page),
            "text [`kept`] in prose\n<!-- i18n:skip -->\n\n```rust,ignore\n/// first act is `Tasks::move_self_in`, see [`x`](y).\npub fn f() {\n\n    1\n}\n```\n<!-- i18n:skip -->\n\n```text\n    kept\n```\n"
        );
    }

    #[test]
    fn code_that_is_not_a_comment_keeps_its_brackets() {
        let page = "```rust\nlet a = [`x`];\n```\n";
        assert_eq!(tidy_rust_blocks(page), format!("{KEEP_UNTRANSLATED}{page}"));
        assert_eq!(unlink("// [`a`] [`b"), "// `a` [`b");
    }

    #[test]
    fn every_fenced_block_and_only_those_stay_untranslated() {
        let page = "Prose.\n\n```text\n```rust\n```\n\nMore.\n\n```sh\nls\n```\n";
        let out = tidy_rust_blocks(page);
        assert_eq!(out.matches("i18n:skip").count(), 2, "{out}");
        assert!(
            out.contains("Prose.\n\n<!-- i18n:skip -->\n\n```text\n```rust\n```\n"),
            "{out}"
        );
        assert!(
            out.contains("More.\n\n<!-- i18n:skip -->\n\n```sh\nls\n```\n"),
            "{out}"
        );
    }
}
