//! Container Workshop: the exercises, solved. Read these after trying.

pub mod ch01_clone;
pub mod ch02_namespaces;
pub mod ch03_mount;
pub mod ch04_rootfs;
pub mod ch05_uts;
pub mod ch06_net;
pub mod ch07_cgroups;
pub mod ch08_overlay;
pub mod ch09_image;
pub mod ch10_bridge;
pub mod ch11_rootless;
pub mod ch12_hardened;
