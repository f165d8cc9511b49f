//! Chapter 10: the answers a student might give (see the crate's doc).

use crate::{chosen, right, unknown, wrong, Variant};
use anyhow::{bail, Context, Result};
use ch06_net::Subnet;
use nix::libc;
use std::ffi::CString;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub const VARIANTS: &[Variant] = &[
    wrong(
        "10.1",
        "up-only",
        "brings the port up and never makes it a port: a veth end up on its own, beside the bridge",
    ).because("is no port of br-ex10"),
    wrong(
        "10.1",
        "master-only",
        "SIOCBRADDIF only: a port of the bridge, but down, so it forwards nothing",
    ).because("is a port of br-ex10 but down"),
    wrong(
        "10.1",
        "bridge-up",
        "SIOCSIFFLAGS on the bridge instead of the port: the bridge was up already, the port stays down",
    ).because("is a port of br-ex10 but down"),
    wrong(
        "10.1",
        "flags-overwritten",
        "ifru_flags = IFF_UP, without reading them first: the port's other flags (IFF_MULTICAST) are cleared",
    ).because("its other flags"),
    wrong(
        "10.1",
        "swapped",
        "SIOCBRADDIF asked of the port about the bridge: the port is no bridge, the kernel refuses",
    ).because("is asked of the bridge"),
    wrong(
        "10.1",
        "bridge-itself",
        "the bridge's own index in ifr_ifindex: the bridge asked to be a port of itself",
    ).because("the bridge's own index"),
    wrong(
        "10.1",
        "container-end",
        "enslaves the veth's other end (wsh- made wsc-): the container's end, which is in the container's namespace",
    ).because("the container's end lives in the container's namespace"),
    wrong(
        "10.1",
        "hardcoded",
        "the chapter's bridge, wsbr0, instead of the one it is given",
    ).because("not the chapter's wsbr0"),
    right(
        "10.1",
        "netlink",
        "the chapter's way: one RTM_NEWLINK with IFLA_MASTER and IFF_UP (Netlink::set_master_and_up)",
    ),
    right(
        "10.1",
        "up-first",
        "the port up first, then SIOCBRADDIF: the order does not matter",
    ),
    wrong(
        "10.2",
        "exists-then-create",
        "Path::exists() then File::create: two runs that looked at the same moment both take the address",
    ).because("won by more than one"),
    wrong(
        "10.2",
        "exists-then-create-new",
        "Path::exists() then create_new, and an error when create_new says EEXIST: a run that lost a race fails while addresses are free",
    ).because("failed while"),
    wrong(
        "10.2",
        "mutex",
        "a static Mutex around exists() and File::create: the threads of one process take turns, other processes do not",
    ).because("other processes"),
    wrong(
        "10.2",
        "create-truncate",
        "OpenOptions create(true) + truncate(true): the file of a taken address is opened (and emptied) again",
    ).because("is taken"),
    wrong(
        "10.2",
        "eexist-error",
        "an error at the first EEXIST instead of trying the next address",
    ).because("try the next"),
    wrong(
        "10.2",
        "from-gateway",
        "starts at the first host address, the bridge's own (the gateway)",
    ).because("the gateway"),
    wrong(
        "10.2",
        "from-network",
        "starts at the network address itself",
    ).because("the network address"),
    wrong(
        "10.2",
        "with-broadcast",
        "runs up to the broadcast address, included",
    ).because("the broadcast address"),
    wrong(
        "10.2",
        "last-byte",
        "a /24 assumed: .2 to .254 of the address's first three bytes, whatever the prefix",
    ).because("a /28"),
    wrong(
        "10.2",
        "no-record",
        "creates the lease file and writes nothing in it",
    ).because("the record"),
    wrong(
        "10.2",
        "count-files",
        "starts after as many addresses as there are files: a released address is not taken again first",
    ).because("released"),
    right(
        "10.2",
        "libc-excl",
        "libc's open(2) with O_WRONLY | O_CREAT | O_EXCL",
    ),
    right(
        "10.2",
        "link",
        "the record written to a temporary file first, then link(2)ed to the address's name (EEXIST: taken): the lease never appears empty",
    ),
];

/// `SIOCBRADDIF` of <linux/sockios.h>.
const SIOCBRADDIF: libc::c_ulong = 0x89a2;

fn socket() -> Result<OwnedFd> {
    // SAFETY: no pointers; the descriptor is ours.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("socket");
    }
    // SAFETY: just opened, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn index_of(name: &str) -> Result<libc::c_int> {
    let c = CString::new(name)?;
    // SAFETY: a NUL-terminated string that lives for the call.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(std::io::Error::last_os_error()).with_context(|| format!("no link called {name}")),
        i => Ok(i as libc::c_int),
    }
}

fn request(name: &str) -> libc::ifreq {
    // SAFETY: plain data; all zeroes is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (to, from) in req.ifr_name.iter_mut().zip(name.bytes().take(15)) {
        *to = from as libc::c_char;
    }
    req
}

fn ioctl(fd: &OwnedFd, what: libc::c_ulong, req: &mut libc::ifreq) -> Result<()> {
    // SAFETY: a valid ifreq that outlives the call.
    if unsafe { libc::ioctl(fd.as_raw_fd(), what as _, req as *mut libc::ifreq) } < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}

/// `ifr_name`'s bridge takes the link with index `index` as a port.
fn add_port(fd: &OwnedFd, bridge: &str, index: libc::c_int) -> Result<()> {
    let mut req = request(bridge);
    req.ifr_ifru.ifru_ifindex = index;
    ioctl(fd, SIOCBRADDIF, &mut req).with_context(|| format!("SIOCBRADDIF {bridge} {index}"))
}

/// `name` up, its other flags kept.
fn set_up(fd: &OwnedFd, name: &str) -> Result<()> {
    let mut req = request(name);
    ioctl(fd, libc::SIOCGIFFLAGS, &mut req).with_context(|| format!("SIOCGIFFLAGS {name}"))?;
    // SAFETY: SIOCGIFFLAGS filled ifru_flags.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    ioctl(fd, libc::SIOCSIFFLAGS, &mut req).with_context(|| format!("SIOCSIFFLAGS {name}"))
}

/// Exercise 10.1.
pub fn attach(port: &str, bridge: &str) -> Result<()> {
    let choice = chosen("10.1");
    let Some(choice) = choice.as_deref() else {
        return solutions::ch10_bridge::attach(port, bridge);
    };
    let fd = socket()?;
    match choice {
        "up-only" => set_up(&fd, port),
        "master-only" => add_port(&fd, bridge, index_of(port)?),
        "bridge-up" => {
            add_port(&fd, bridge, index_of(port)?)?;
            set_up(&fd, bridge)
        }
        "flags-overwritten" => {
            add_port(&fd, bridge, index_of(port)?)?;
            let mut req = request(port);
            req.ifr_ifru.ifru_flags = libc::IFF_UP as libc::c_short;
            ioctl(&fd, libc::SIOCSIFFLAGS, &mut req)
        }
        "swapped" => {
            add_port(&fd, port, index_of(bridge)?)?;
            set_up(&fd, port)
        }
        "bridge-itself" => {
            add_port(&fd, bridge, index_of(bridge)?)?;
            set_up(&fd, port)
        }
        "container-end" => {
            let end = port.replacen("wsh-", "wsc-", 1);
            add_port(&fd, bridge, index_of(&end)?)?;
            set_up(&fd, &end)
        }
        "hardcoded" => {
            let _ = bridge;
            add_port(&fd, "wsbr0", index_of(port)?).context("wsbr0")?;
            set_up(&fd, port)
        }
        "netlink" => ch06_net::netlink::Netlink::open()?.set_master_and_up(port, bridge),
        "up-first" => {
            set_up(&fd, port)?;
            add_port(&fd, bridge, index_of(port)?)
        }
        other => unknown("10.1", other),
    }
}

/// The addresses of `subnet` from `first` to `last` (as u32).
fn range(subnet: Subnet) -> (u32, u32) {
    (
        u32::from(subnet.first_host()) + 1,
        u32::from(subnet.broadcast()) - 1,
    )
}

/// Path::exists(), then File::create (which truncates a file that is there).
fn exists_then_create(dir: &Path, subnet: Subnet, record: &str) -> Result<Ipv4Addr> {
    let (first, last) = range(subnet);
    for n in first..=last {
        let path = dir.join(Ipv4Addr::from(n).to_string());
        if path.exists() {
            continue;
        }
        std::fs::File::create(&path)?.write_all(record.as_bytes())?;
        return Ok(Ipv4Addr::from(n));
    }
    bail!("no free address left in {subnet}")
}

/// create_new over `first..=last`, the next address on EEXIST.
fn create_new_in(dir: &Path, first: u32, last: u32, record: &str) -> Result<Ipv4Addr> {
    for n in first..=last {
        let path = dir.join(Ipv4Addr::from(n).to_string());
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                f.write_all(record.as_bytes())?;
                return Ok(Ipv4Addr::from(n));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("create {}", path.display())),
        }
    }
    bail!("no free address left")
}

/// Exercise 10.2.
pub fn claim_next(dir: &Path, subnet: Subnet, record: &str) -> Result<Ipv4Addr> {
    let choice = chosen("10.2");
    let Some(choice) = choice.as_deref() else {
        return solutions::ch10_bridge::claim_next(dir, subnet, record);
    };
    let (first, last) = range(subnet);
    match choice {
        "exists-then-create" => exists_then_create(dir, subnet, record),
        "exists-then-create-new" => {
            for n in first..=last {
                let path = dir.join(Ipv4Addr::from(n).to_string());
                if path.exists() {
                    continue;
                }
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .with_context(|| format!("failed to create {}", path.display()))?;
                f.write_all(record.as_bytes())?;
                return Ok(Ipv4Addr::from(n));
            }
            bail!("no free address left in {subnet}")
        }
        "mutex" => {
            static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
            let _turn = LOCK.lock().unwrap_or_else(|e| e.into_inner());
            exists_then_create(dir, subnet, record)
        }
        "create-truncate" => {
            for n in first..=last {
                let path = dir.join(Ipv4Addr::from(n).to_string());
                match std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&path)
                {
                    Ok(mut f) => {
                        f.write_all(record.as_bytes())?;
                        return Ok(Ipv4Addr::from(n));
                    }
                    Err(_) => continue,
                }
            }
            bail!("no free address left in {subnet}")
        }
        "eexist-error" => {
            let path = dir.join(Ipv4Addr::from(first).to_string());
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .with_context(|| format!("failed to create {}", path.display()))?;
            f.write_all(record.as_bytes())?;
            Ok(Ipv4Addr::from(first))
        }
        "from-gateway" => create_new_in(dir, first - 1, last, record),
        "from-network" => create_new_in(dir, first - 2, last, record),
        "with-broadcast" => create_new_in(dir, first, last + 1, record),
        "last-byte" => {
            let [a, b, c, _] = subnet.network.octets();
            let base = u32::from(Ipv4Addr::new(a, b, c, 0));
            create_new_in(dir, base + 2, base + 254, record)
        }
        "no-record" => create_new_in(dir, first, last, ""),
        "count-files" => {
            let taken = std::fs::read_dir(dir)?.count() as u32;
            create_new_in(dir, first + taken, last, record)
        }
        "libc-excl" => {
            for n in first..=last {
                let address = Ipv4Addr::from(n);
                let path = CString::new(dir.join(address.to_string()).as_os_str().as_bytes())?;
                let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC;
                // SAFETY: a NUL-terminated path that lives for the call.
                let fd = unsafe { libc::open(path.as_ptr(), flags, 0o644) };
                if fd < 0 {
                    let e = std::io::Error::last_os_error();
                    if e.raw_os_error() == Some(libc::EEXIST) {
                        continue;
                    }
                    return Err(e).context("open");
                }
                // SAFETY: just opened, owned by nothing else.
                let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
                file.write_all(record.as_bytes())?;
                return Ok(address);
            }
            bail!("no free address left in {subnet}")
        }
        "link" => {
            let tmp = dir.join(format!(
                ".claiming-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::write(&tmp, record)?;
            let mut got = None;
            for n in first..=last {
                let address = Ipv4Addr::from(n);
                match std::fs::hard_link(&tmp, dir.join(address.to_string())) {
                    Ok(()) => {
                        got = Some(address);
                        break;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    Err(e) => {
                        let _ = std::fs::remove_file(&tmp);
                        return Err(e).context("link");
                    }
                }
            }
            std::fs::remove_file(&tmp)?;
            got.with_context(|| format!("no free address left in {subnet}"))
        }
        other => unknown("10.2", other),
    }
}
