//! What a dynamically linked binary loads, read from its ELF headers.
//!
//! `ldd` is never run or parsed: it may execute the binary it is asked about.
//! The dynamic loader's own rules are followed instead, as far as a copy
//! needs them: the interpreter named by `PT_INTERP`, then every `DT_NEEDED`
//! library, recursively, looked up in `DT_RUNPATH` (or `DT_RPATH` when there
//! is no RUNPATH), then the directories of /etc/ld.so.conf, then the default
//! directories. A candidate is only taken when its ELF class, byte order and
//! machine match the object that needs it, as ld.so does, so a 32-bit
//! library in /usr/lib never satisfies a 64-bit binary.

use anyhow::{bail, Context, Result};
use std::collections::HashSet;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// The parts of an ELF file that say what it loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elf {
    pub kind: Kind,
    /// `PT_INTERP`: the dynamic loader, by absolute path. None: static.
    pub interpreter: Option<PathBuf>,
    /// `DT_NEEDED`: libraries by soname (`libc.so.6`).
    pub needed: Vec<String>,
    /// `DT_RUNPATH` directories, in order (may use `$ORIGIN`).
    pub runpath: Vec<String>,
    /// `DT_RPATH` directories, used only when there is no RUNPATH.
    pub rpath: Vec<String>,
}

/// What makes two ELF objects loadable into one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub is_64: bool,
    pub little_endian: bool,
    /// `e_machine` (62 for x86-64, 183 for aarch64).
    pub machine: u16,
}

impl Elf {
    /// Whether the binary is linked statically (it loads nothing).
    pub fn is_static(&self) -> bool {
        self.interpreter.is_none() && self.needed.is_empty()
    }

    /// The search directories this object names itself: RUNPATH, or RPATH
    /// when it has no RUNPATH (the loader ignores RPATH then).
    fn own_search_dirs(&self) -> &[String] {
        if self.runpath.is_empty() {
            &self.rpath
        } else {
            &self.runpath
        }
    }
}

/// Read `path`'s ELF headers. `Ok(None)` when it is not an ELF file (a script).
pub fn read(path: &Path) -> Result<Option<Elf>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    parse(&bytes).with_context(|| format!("failed to parse the ELF headers of {}", path.display()))
}

/// Only the dynamic loader a program asks for (PT_INTERP), read from its
/// headers alone: a few hundred bytes, not the whole file. `Ok(None)` for a
/// static program or a file that is not ELF. Used on every container start
/// (`--rootfs` checks its /bin/sh), so it must be cheap.
pub fn interpreter(path: &Path) -> Result<Option<PathBuf>> {
    use std::os::unix::fs::FileExt;
    let file =
        std::fs::File::open(path).with_context(|| format!("failed to open {}", path.display()))?;
    let mut ident = [0u8; 64];
    let failed_to_read = || format!("failed to read {}", path.display());
    if file.read_at(&mut ident, 0).with_context(failed_to_read)? < 52
        || !ident.starts_with(b"\x7fELF")
    {
        return Ok(None);
    }
    let (is_64, little) = (ident[4] == 2, ident[5] == 1);
    let u16_at = |b: &[u8], o: usize| if little { u16::from_le_bytes([b[o], b[o + 1]]) } else { u16::from_be_bytes([b[o], b[o + 1]]) } as u64;
    let u32_at = |b: &[u8], o: usize| {
        let a = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        (if little {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }) as u64
    };
    let u64_at = |b: &[u8], o: usize| {
        let a: [u8; 8] = b[o..o + 8].try_into().expect("8 bytes");
        if little {
            u64::from_le_bytes(a)
        } else {
            u64::from_be_bytes(a)
        }
    };
    // e_phoff, e_phentsize, e_phnum; then in each program header p_type, p_offset, p_filesz.
    let (phoff, phentsize, phnum) = if is_64 {
        (
            u64_at(&ident, 0x20),
            u16_at(&ident, 0x36),
            u16_at(&ident, 0x38),
        )
    } else {
        (
            u32_at(&ident, 0x1c),
            u16_at(&ident, 0x2a),
            u16_at(&ident, 0x2c),
        )
    };
    if phentsize == 0 || phnum > 4096 {
        return Ok(None);
    }
    let mut headers = vec![0u8; (phentsize * phnum) as usize];
    file.read_exact_at(&mut headers, phoff)
        .with_context(|| format!("failed to read the program headers of {}", path.display()))?;
    for header in headers.chunks_exact(phentsize as usize) {
        if u32_at(header, 0) != 3 {
            continue; // not PT_INTERP
        }
        let (offset, size) = if is_64 {
            (u64_at(header, 8), u64_at(header, 0x20))
        } else {
            (u32_at(header, 4), u32_at(header, 0x10))
        };
        let mut name = vec![0u8; size.min(4096) as usize];
        file.read_exact_at(&mut name, offset)
            .with_context(failed_to_read)?;
        let name = name.split(|b| *b == 0).next().unwrap_or_default();
        return Ok(Some(PathBuf::from(std::ffi::OsStr::from_bytes(name))));
    }
    Ok(None)
}

/// Parse an ELF image held in memory. `Ok(None)` when it is not ELF.
pub fn parse(bytes: &[u8]) -> Result<Option<Elf>> {
    if !bytes.starts_with(b"\x7fELF") {
        return Ok(None);
    }
    let elf = goblin::elf::Elf::parse(bytes)?;
    let split = |list: &[&str]| -> Vec<String> {
        list.iter()
            .flat_map(|l| l.split(':'))
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
            .collect()
    };
    Ok(Some(Elf {
        kind: Kind {
            is_64: elf.is_64,
            little_endian: elf.little_endian,
            machine: elf.header.e_machine,
        },
        interpreter: elf.interpreter.map(PathBuf::from),
        needed: elf.libraries.iter().map(|l| l.to_string()).collect(),
        runpath: split(&elf.runpaths),
        rpath: split(&elf.rpaths),
    }))
}

/// The kind of an ELF file from its first bytes only, or None if it is not
/// ELF. Used to check candidates without reading whole libraries.
pub fn kind_of(path: &Path) -> Option<Kind> {
    let mut head = [0u8; 20];
    std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
    if !head.starts_with(b"\x7fELF") {
        return None;
    }
    let is_64 = match head[4] {
        1 => false,
        2 => true,
        _ => return None,
    };
    let little_endian = match head[5] {
        1 => true,
        2 => false,
        _ => return None,
    };
    let machine = if little_endian {
        u16::from_le_bytes([head[18], head[19]])
    } else {
        u16::from_be_bytes([head[18], head[19]])
    };
    Some(Kind {
        is_64,
        little_endian,
        machine,
    })
}

/// Debian's multiarch directory name for a kind of binary (`x86_64-linux-gnu`).
pub fn multiarch_triplet(kind: Kind) -> Option<&'static str> {
    Some(match (kind.machine, kind.is_64, kind.little_endian) {
        (62, true, _) => "x86_64-linux-gnu",
        (62, false, _) => "x86_64-linux-gnux32",
        (3, _, _) => "i386-linux-gnu",
        (183, _, true) => "aarch64-linux-gnu",
        (40, _, true) => "arm-linux-gnueabihf",
        (243, true, _) => "riscv64-linux-gnu",
        (21, true, true) => "powerpc64le-linux-gnu",
        (22, true, _) => "s390x-linux-gnu",
        (258, true, _) => "loongarch64-linux-gnu",
        _ => return None,
    })
}

/// The directories the dynamic loader searches by itself, with no cache and
/// no configuration: the multiarch pair first (Debian, Ubuntu), then the
/// classic ones (/lib64 for Fedora and friends).
pub fn default_dirs(kind: Kind) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(triplet) = multiarch_triplet(kind) {
        dirs.push(Path::new("/lib").join(triplet));
        dirs.push(Path::new("/usr/lib").join(triplet));
    }
    if kind.is_64 {
        dirs.push("/lib64".into());
        dirs.push("/usr/lib64".into());
    }
    dirs.push("/lib".into());
    dirs.push("/usr/lib".into());
    dirs
}

/// The directories /etc/ld.so.conf lists, following its `include` lines
/// (globs; relative ones are relative to the including file's directory).
/// A missing file lists nothing.
pub fn ld_so_conf_dirs(conf: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut seen = HashSet::new();
    read_ld_so_conf(conf, &mut dirs, &mut seen, 0);
    dirs
}

fn read_ld_so_conf(
    conf: &Path,
    dirs: &mut Vec<PathBuf>,
    seen: &mut HashSet<PathBuf>,
    depth: usize,
) {
    if depth > 8 || !seen.insert(conf.to_path_buf()) {
        return;
    }
    let Ok(text) = std::fs::read_to_string(conf) else {
        return;
    };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        match words.next() {
            Some("include") => {
                for pattern in words {
                    let pattern = if pattern.starts_with('/') {
                        PathBuf::from(pattern)
                    } else {
                        conf.parent().unwrap_or(Path::new("/")).join(pattern)
                    };
                    for file in glob(&pattern) {
                        read_ld_so_conf(&file, dirs, seen, depth + 1);
                    }
                }
            }
            // `hwcap` lines were dropped from glibc; nothing to search there.
            Some("hwcap") => {}
            _ => {
                // Directories, separated by spaces, tabs, commas or colons.
                for dir in line.split(|c: char| c.is_whitespace() || c == ',' || c == ':') {
                    if dir.starts_with('/') {
                        let dir = PathBuf::from(dir);
                        if !dirs.contains(&dir) {
                            dirs.push(dir);
                        }
                    }
                }
            }
        }
    }
}

/// Expand `*` and `?` in any component of an absolute path, sorted like
/// ldconfig sorts them. Enough for `include /etc/ld.so.conf.d/*.conf`.
pub fn glob(pattern: &Path) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::from("/")];
    for component in pattern.components() {
        let Component::Normal(part) = component else {
            continue;
        };
        let part = part.to_string_lossy();
        let mut next = Vec::new();
        for base in &found {
            if part.contains(['*', '?']) {
                let Ok(entries) = std::fs::read_dir(base) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.') && wildcard_match(&part, n))
                    .collect();
                names.sort();
                next.extend(names.into_iter().map(|n| base.join(n)));
            } else {
                next.push(base.join(&*part));
            }
        }
        found = next;
    }
    found.retain(|p| p.exists());
    found
}

/// Shell-style match of `*` (any run) and `?` (one character).
fn wildcard_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// One thing to put in the root filesystem so that a binary can run there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Copy the host file `from` (following host symlinks) to `to`, an
    /// absolute path inside the rootfs.
    Copy { from: PathBuf, to: PathBuf },
    /// Make the symlink `at` -> `target` inside the rootfs: for a library the
    /// host finds only through ld.so.conf, which the loader in the rootfs does
    /// not read (it reads /etc/ld.so.cache, which a rootfs does not have).
    Link { at: PathBuf, target: PathBuf },
}

/// How a library was found, which decides where it goes in the rootfs.
enum Found {
    /// In a directory named by RUNPATH/RPATH (literal or via `$ORIGIN`), or a
    /// default directory: the same place works inside.
    InPlace { host: PathBuf, inside: PathBuf },
    /// Through /etc/ld.so.conf only: the same place, plus a link from a
    /// default directory so the loader finds it without a cache.
    ViaLdSoConf { host: PathBuf, default_dir: PathBuf },
}

/// Where libraries are looked up, besides each object's own RUNPATH.
pub struct Search {
    pub ld_so_conf: Vec<PathBuf>,
}

impl Search {
    /// The host's configuration: /etc/ld.so.conf and what it includes.
    pub fn host() -> Search {
        Search {
            ld_so_conf: ld_so_conf_dirs(Path::new("/etc/ld.so.conf")),
        }
    }

    /// Everything `binary` loads, as placements in the rootfs, given that the
    /// binary itself will be at `binary_inside` there. The binary itself is
    /// not in the list. A static binary or a script needs nothing.
    pub fn libraries_of(&self, binary: &Path, binary_inside: &Path) -> Result<Vec<Placement>> {
        let Some(main) = read(binary)? else {
            return Ok(Vec::new());
        };
        let mut placements = Vec::new();
        let mut placed: HashSet<PathBuf> = HashSet::new();
        if let Some(interp) = &main.interpreter {
            if !interp.is_file() {
                bail!(
                    "{} names the dynamic loader {}, which the host does not have",
                    binary.display(),
                    interp.display()
                );
            }
            placed.insert(interp.clone());
            placements.push(Placement::Copy {
                from: interp.clone(),
                to: interp.clone(),
            });
        }
        // The loader resolves $ORIGIN of the main program from its real path.
        let host_origin = std::fs::canonicalize(binary)
            .with_context(|| format!("failed to resolve {}", binary.display()))?;
        let mut queue = vec![(
            main,
            dir_of(&host_origin),
            dir_of(binary_inside),
            binary.to_path_buf(),
        )];
        while let Some((object, host_dir, inside_dir, name)) = queue.pop() {
            for soname in &object.needed {
                let found = self
                    .find(soname, &object, &host_dir, &inside_dir)
                    .with_context(|| {
                        format!(
                            "{} needs {soname}, which the host does not have",
                            name.display()
                        )
                    })?;
                let (host, inside) = match found {
                    Found::InPlace { host, inside } => (host, inside),
                    Found::ViaLdSoConf { host, default_dir } => {
                        let at = default_dir.join(soname);
                        if placed.insert(at.clone()) {
                            placements.push(Placement::Link {
                                at,
                                target: host.clone(),
                            });
                        }
                        (host.clone(), host)
                    }
                };
                if !placed.insert(inside.clone()) {
                    continue;
                }
                placements.push(Placement::Copy {
                    from: host.clone(),
                    to: inside.clone(),
                });
                if let Some(lib) = read(&host)? {
                    queue.push((lib, dir_of(&host), dir_of(&inside), host.clone()));
                }
            }
        }
        Ok(placements)
    }

    /// Find `soname`, needed by `object` (which lives in `host_dir` on the
    /// host and will live in `inside_dir` in the rootfs).
    fn find(
        &self,
        soname: &str,
        object: &Elf,
        host_dir: &Path,
        inside_dir: &Path,
    ) -> Result<Found> {
        let fits =
            |candidate: &Path| candidate.is_file() && kind_of(candidate) == Some(object.kind);
        if soname.contains('/') {
            // A path, not a name: the loader takes it as it is.
            let path = PathBuf::from(soname);
            if path.is_absolute() && fits(&path) {
                return Ok(Found::InPlace {
                    host: path.clone(),
                    inside: path,
                });
            }
            bail!("no such file");
        }
        for dir in object.own_search_dirs() {
            if let Some((host, inside)) = expand_origin(dir, host_dir, inside_dir) {
                if fits(&host.join(soname)) {
                    return Ok(Found::InPlace {
                        host: host.join(soname),
                        inside: inside.join(soname),
                    });
                }
            }
        }
        let defaults = default_dirs(object.kind);
        for dir in &self.ld_so_conf {
            let candidate = dir.join(soname);
            if fits(&candidate) {
                if defaults.contains(dir) {
                    return Ok(Found::InPlace {
                        host: candidate.clone(),
                        inside: candidate,
                    });
                }
                return Ok(Found::ViaLdSoConf {
                    host: candidate,
                    default_dir: defaults[0].clone(),
                });
            }
        }
        for dir in &defaults {
            let candidate = dir.join(soname);
            if fits(&candidate) {
                return Ok(Found::InPlace {
                    host: candidate.clone(),
                    inside: candidate,
                });
            }
        }
        let searched: Vec<String> = object
            .own_search_dirs()
            .iter()
            .cloned()
            .chain(self.ld_so_conf.iter().map(|d| d.display().to_string()))
            .chain(defaults.iter().map(|d| d.display().to_string()))
            .collect();
        bail!("searched {}", searched.join(":"))
    }
}

/// A RUNPATH entry as a (host, inside-the-rootfs) pair of directories.
/// `$ORIGIN` is the object's own directory, which differs between the two
/// when the object moves (a binary copied to /bin); literal directories are
/// the same in both. Other tokens (`$LIB`, `$PLATFORM`) and relative entries
/// are not followed.
fn expand_origin(
    dir: &str,
    host_origin: &Path,
    inside_origin: &Path,
) -> Option<(PathBuf, PathBuf)> {
    let rest = dir
        .strip_prefix("$ORIGIN")
        .or_else(|| dir.strip_prefix("${ORIGIN}"));
    match rest {
        Some(rest) if !rest.contains('$') => {
            let rest = rest.trim_start_matches('/');
            Some((
                normalize(&host_origin.join(rest)),
                normalize(&inside_origin.join(rest)),
            ))
        }
        None if dir.starts_with('/') && !dir.contains('$') => {
            Some((PathBuf::from(dir), PathBuf::from(dir)))
        }
        _ => None,
    }
}

fn dir_of(path: &Path) -> PathBuf {
    path.parent().unwrap_or(Path::new("/")).to_path_buf()
}

/// Remove `.` and `..` lexically, as the loader does with `$ORIGIN/../lib`.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(part) => out.push(part),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use workshop_testkit::TempDir;

    #[test]
    fn interpreter_from_the_headers_alone_matches_the_full_parse() {
        for program in ["/bin/sh", "/usr/bin/ls", "/bin/busybox", "/etc/hostname"] {
            let path = Path::new(program);
            if !path.exists() {
                continue;
            }
            let full = read(path).unwrap().and_then(|e| e.interpreter);
            assert_eq!(interpreter(path).unwrap(), full, "{program}");
        }
    }

    #[test]
    fn reads_what_ls_loads_from_its_headers() {
        let ls = read(Path::new("/bin/ls")).unwrap().expect("ls is ELF");
        assert!(ls.interpreter.is_some(), "{ls:?}");
        assert!(ls.needed.iter().any(|n| n.starts_with("libc.so")), "{ls:?}");
        assert_eq!(kind_of(Path::new("/bin/ls")), Some(ls.kind));
    }

    #[test]
    fn a_script_is_not_elf() {
        assert_eq!(parse(b"#!/bin/sh\necho hi\n").unwrap(), None);
        assert!(parse(b"\x7fELF garbage").is_err());
    }

    #[test]
    fn wildcards_match_like_the_shell() {
        assert!(wildcard_match("*.conf", "libc.conf"));
        assert!(wildcard_match("x86_64-*.conf", "x86_64-linux-gnu.conf"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("*.conf", "libc.conf.bak"));
        assert!(!wildcard_match("a?c", "ac"));
        assert!(wildcard_match("*", ""));
    }

    #[test]
    fn ld_so_conf_follows_includes_in_order() {
        let tmp = TempDir::new("ldsoconf");
        let root = tmp.path();
        std::fs::create_dir(root.join("conf.d")).unwrap();
        std::fs::write(
            root.join("ld.so.conf"),
            "# comment\n/opt/first\ninclude conf.d/*.conf\n/opt/last, /opt/also # tail\nhwcap 0 nosegneg\n",
        )
        .unwrap();
        std::fs::write(root.join("conf.d/b.conf"), "/opt/b\n").unwrap();
        std::fs::write(
            root.join("conf.d/a.conf"),
            "/opt/a\ninclude ../ld.so.conf\n",
        )
        .unwrap();
        std::fs::write(root.join("conf.d/skip.txt"), "/opt/never\n").unwrap();
        let dirs = ld_so_conf_dirs(&root.join("ld.so.conf"));
        let dirs: Vec<&str> = dirs.iter().map(|d| d.to_str().unwrap()).collect();
        assert_eq!(
            dirs,
            ["/opt/first", "/opt/a", "/opt/b", "/opt/last", "/opt/also"]
        );
        assert!(ld_so_conf_dirs(&root.join("missing.conf")).is_empty());
    }

    #[test]
    fn origin_is_the_objects_own_directory_on_each_side() {
        let (host, inside) = expand_origin(
            "$ORIGIN/../lib",
            Path::new("/opt/app/bin"),
            Path::new("/bin"),
        )
        .unwrap();
        assert_eq!(host, Path::new("/opt/app/lib"));
        assert_eq!(inside, Path::new("/lib"));
        let (host, inside) = expand_origin("${ORIGIN}", Path::new("/a"), Path::new("/b")).unwrap();
        assert_eq!(
            (host.as_path(), inside.as_path()),
            (Path::new("/a"), Path::new("/b"))
        );
        assert_eq!(
            expand_origin("/usr/lib/foo", Path::new("/a"), Path::new("/b")),
            Some(("/usr/lib/foo".into(), "/usr/lib/foo".into()))
        );
        assert_eq!(
            expand_origin("$LIB/foo", Path::new("/a"), Path::new("/b")),
            None
        );
        assert_eq!(
            expand_origin("relative/dir", Path::new("/a"), Path::new("/b")),
            None
        );
    }

    #[test]
    fn multiarch_defaults_come_first() {
        let kind = kind_of(Path::new("/bin/ls")).unwrap();
        let dirs = default_dirs(kind);
        if cfg!(target_arch = "x86_64") {
            assert_eq!(dirs[0], Path::new("/lib/x86_64-linux-gnu"));
            assert_eq!(dirs[1], Path::new("/usr/lib/x86_64-linux-gnu"));
        }
        assert!(dirs.contains(&PathBuf::from("/usr/lib")));
    }

    #[test]
    fn libraries_of_ls_include_the_loader_and_libc() {
        let placements = Search::host()
            .libraries_of(Path::new("/bin/ls"), Path::new("/bin/ls"))
            .unwrap();
        let ls = read(Path::new("/bin/ls")).unwrap().unwrap();
        assert!(placements.contains(&Placement::Copy {
            from: ls.interpreter.clone().unwrap(),
            to: ls.interpreter.unwrap(),
        }));
        assert!(placements
            .iter()
            .any(|p| matches!(p, Placement::Copy { to, .. }
            if to.file_name().is_some_and(|n| n.to_string_lossy().starts_with("libc.so")))));
    }

    #[test]
    fn a_static_binary_needs_nothing() {
        let Some(busybox) = read(Path::new("/bin/busybox")).ok().flatten() else {
            panic!("/bin/busybox is missing: install busybox-static (`apt-get install busybox-static`)");
        };
        if busybox.is_static() {
            assert!(Search::host()
                .libraries_of(Path::new("/bin/busybox"), Path::new("/bin/busybox"))
                .unwrap()
                .is_empty());
        }
    }
}
