//! Chapter 10 exercises, solved.

use anyhow::{bail, Context, Result};
use ch06_net::Subnet;
use nix::libc;
use std::ffi::CString;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// `SIOCBRADDIF` of <linux/sockios.h>: the libc crate does not name it.
const SIOCBRADDIF: libc::c_ulong = 0x89a2;

/// Exercise 10.1: make a veth end a port of a bridge, and bring it up.
pub fn attach(port: &str, bridge: &str) -> Result<()> {
    // SAFETY: socket(2) takes no pointers; a descriptor it returns is ours.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("failed to open a socket");
    }
    // SAFETY: fd was just opened, and nothing else owns it.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let index = index_of(port)?;

    // brctl addif BRIDGE PORT: asked of the bridge, about the port.
    let mut req = request(bridge)?;
    req.ifr_ifru.ifru_ifindex = index as libc::c_int;
    ioctl(&socket, SIOCBRADDIF, &mut req)
        .with_context(|| format!("failed to make {port} a port of {bridge} (SIOCBRADDIF)"))?;

    // ifconfig PORT up: its flags as they are, and IFF_UP.
    let mut req = request(port)?;
    ioctl(&socket, libc::SIOCGIFFLAGS, &mut req)
        .with_context(|| format!("failed to read the flags of {port} (SIOCGIFFLAGS)"))?;
    // SAFETY: SIOCGIFFLAGS filled ifru_flags.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    ioctl(&socket, libc::SIOCSIFFLAGS, &mut req)
        .with_context(|| format!("failed to bring {port} up (SIOCSIFFLAGS)"))
}

/// The index of link `name` in this network namespace.
fn index_of(name: &str) -> Result<u32> {
    let c = CString::new(name)?;
    // SAFETY: a NUL-terminated string that lives for the call.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(std::io::Error::last_os_error())
            .with_context(|| format!("no link called {name} in this network namespace")),
        index => Ok(index),
    }
}

/// An `ifreq` naming link `name`, the rest zero.
fn request(name: &str) -> Result<libc::ifreq> {
    // SAFETY: ifreq is plain data, for which all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= req.ifr_name.len() || name.contains('\0') {
        bail!("{name:?} is no link name: at most 15 bytes, no NUL");
    }
    for (to, from) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *to = from as libc::c_char;
    }
    Ok(req)
}

fn ioctl(socket: &OwnedFd, request: libc::c_ulong, req: &mut libc::ifreq) -> Result<()> {
    // SAFETY: req is a valid ifreq that outlives the call; these requests
    // read and write an ifreq only.
    if unsafe { libc::ioctl(socket.as_raw_fd(), request as _, req as *mut libc::ifreq) } < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}

/// Exercise 10.2: claim the next free address of a subnet, atomically.
pub fn claim_next(dir: &Path, subnet: Subnet, record: &str) -> Result<Ipv4Addr> {
    let first = u32::from(subnet.first_host()) + 1; // the first host is the gateway
    let last = u32::from(subnet.broadcast()).saturating_sub(1);
    for n in first..=last {
        let address = Ipv4Addr::from(n);
        let path = dir.join(address.to_string());
        // O_CREAT | O_EXCL: "free?" and "mine" in one step of the kernel.
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => {
                file.write_all(record.as_bytes())
                    .with_context(|| format!("failed to write {}", path.display()))?;
                return Ok(address);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue, // taken
            Err(e) => {
                return Err(e).with_context(|| format!("failed to create {}", path.display()))
            }
        }
    }
    bail!(
        "no free address left in {subnet}: every one has a lease in {}",
        dir.display()
    )
}
