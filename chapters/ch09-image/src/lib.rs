//! Chapter 9: images. An image is a stack of layers (tar files, each the
//! diff of one step) and a config (the command, environment, working
//! directory and user to start with), tied together by a manifest and named
//! by digests: the sha256 of their bytes.
//!
//! This chapter imports images from files (`docker save`, an OCI image
//! layout), keeps them in a content-addressed store under `target/images`,
//! runs them as chapter 8's overlay with each layer a lower, and builds new
//! ones from a Containerfile, one layer per step.
//!
//! The modules, in the order the book reads them:
//! - [`digest`]: the sha256 of a stream, as the `sha256:HEX` the formats use.
//! - [`reference`]: `NAME:TAG`, the tag `latest` when left out.
//! - [`store`]: the content store (itself an OCI image layout), its index of
//!   names, and each layer unpacked once under `layers/`.
//! - [`layer`]: a layer tar to a directory and back: OCI whiteouts
//!   (`.wh.NAME`, `.wh..wh..opq`) to overlay whiteouts and back.
//! - [`pack`]: an upper directory to a layer tar, whiteouts and all.
//! - [`import`]: docker-archive and OCI layout, tar or directory, in.
//! - [`config`]: an image config to the container's process.
//! - [`commit`]: a new image from an image and one change (a layer, a config).
//! - [`build`]: a Containerfile, step by step, with a layer cache.
//! - [`save`]: an image out, as an OCI layout or a docker-archive.
//! - [`run`]: an image run: its layers as chapter 8's lowers, its config as the process.
//! - [`cli`]: the command line (plumbing): the contract's options and docker's subcommands.

pub mod build;
pub mod cli;
pub mod commit;
pub mod config;
pub mod digest;
pub mod import;
pub mod layer;
pub mod pack;
pub mod progress;
pub mod reference;
pub mod run;
pub mod save;
pub mod store;

pub use digest::{sha256_of, HashingReader};
pub use reference::Reference;
pub use store::{Image, Store};
