//! Chapter 9's command line: the chapter contract's (`[OPTIONS] [-- COMMAND]`,
//! in the workshop's base image) plus docker's subcommands. Plumbing, not a
//! lesson: main.rs tells the story.

use crate::Reference;
use ch08_overlay::RunOptions;
use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use workshop::{ChapterCli, Common};

/// Chapter 9: images: import them, run them, build them.
#[derive(Parser)]
#[command(
    version,
    // `--quiet` and `--color` are Common's: made global so that they work
    // before the subcommand and after it (`images -q`, `-q images`). The
    // run options and COMMAND belong to the base image's run: given with a
    // subcommand, reject_conflicts refuses them (args_conflicts_with_subcommands
    // would refuse the global ones too: `-q images` would run `images`).
    subcommand_value_name = "SUBCOMMAND",
    subcommand_help_heading = "Subcommands",
    mut_arg("quiet", |a| a.global(true)),
    mut_arg("color", |a| a.global(true)),
    after_help = "Examples:\n  ch09-image -- sh                    (the base image, workshop/busybox)\n  \
                  ch09-image import ./image.tar --name app:v1\n  \
                  ch09-image run --cpus 0.5 app:v1 -- ls /\n  \
                  ch09-image --store /tmp/images images"
)]
pub struct Cli {
    /// The image store (an OCI image layout); default: target/images
    #[arg(long, global = true, value_name = "DIR")]
    pub store: Option<PathBuf>,

    #[command(subcommand)]
    pub subcommand: Option<Sub>,

    // `--keep` and chapter 7's options, for `-- COMMAND` in the base image.
    #[command(flatten)]
    pub run: RunOptions,

    #[command(flatten)]
    pub common: Common,
}

#[derive(Subcommand)]
pub enum Sub {
    /// Import a docker-archive or OCI layout (tar or directory), or a plain
    /// directory as a one-layer image (then --name is needed)
    Import {
        #[arg(value_name = "FILE|DIR")]
        path: PathBuf,
        /// The name to give it, NAME[:TAG]
        #[arg(long)]
        name: Option<Reference>,
    },
    /// List the images in the store: name, tag, id, layers, size
    Images,
    /// Remove an image, and the layers no other image uses
    Rmi {
        /// The image to remove (the tag is `latest` when left out)
        #[arg(value_name = "NAME[:TAG]")]
        image: Reference,
    },
    /// Run a command in an image (its Entrypoint and Cmd without one)
    Run {
        #[command(flatten)]
        run: RunOptions,
        /// Start an interactive shell (/bin/sh) in the image, as its user
        #[arg(long, conflicts_with = "command")]
        shell: bool,
        /// The image to run, NAME[:TAG] (`images` lists them)
        #[arg(value_name = "IMAGE")]
        image: Reference,
        /// The command: it replaces the image's Cmd, after its Entrypoint
        #[arg(
            value_name = "COMMAND",
            trailing_var_arg = true,
            allow_hyphen_values = true
        )]
        command: Vec<String>,
    },
    /// Build an image from a Containerfile (or Dockerfile) in DIR
    Build {
        /// The name to give it, NAME[:TAG]
        #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
        tag: Reference,
        /// The Containerfile, if not DIR/Containerfile or DIR/Dockerfile
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
        /// The build context: COPY reads its files from here, and no further
        #[arg(value_name = "DIR")]
        context: PathBuf,
    },
    /// Remove the build cache (docker builder prune), then the layers no
    /// image uses any more
    Prune,
    /// Write an image out, as an OCI layout (a directory) or a docker-archive tar
    Save {
        /// The image to write out
        #[arg(value_name = "NAME[:TAG]")]
        image: Reference,
        /// Where: a directory for an OCI layout, a file for a docker-archive
        #[arg(short = 'o', long = "output", value_name = "PATH")]
        output: PathBuf,
        /// oci: an OCI image layout (skopeo, umoci); docker-archive: one tar, as docker save writes
        #[arg(long, value_enum, default_value_t = Format::Oci)]
        format: Format,
    },
}

#[derive(ValueEnum, Clone, Copy)]
pub enum Format {
    Oci,
    DockerArchive,
}

impl ChapterCli for Cli {
    fn common(&self) -> &Common {
        &self.common
    }

    fn reject_conflicts(&self) {
        self.run.network.reject_conflicts::<Cli>();
        if let Some(Sub::Run { run, .. }) = &self.subcommand {
            run.network.reject_conflicts::<Cli>();
        }
        if self.subcommand.is_some() {
            reject_run_options_with_a_subcommand();
        }
    }
}

/// `--cpus 1 images`: the options of the base image's run (before the
/// subcommand) mean nothing to a subcommand; refuse them (exit 2) rather
/// than ignore them. Those of `run` go after it: `run --cpus 1 IMAGE`.
pub fn reject_run_options_with_a_subcommand() {
    let command = Cli::command();
    let matches = command.clone().get_matches();
    let name = matches.subcommand_name().unwrap_or_default();
    for arg in command.get_arguments().filter(|a| !a.is_global_set()) {
        let id = arg.get_id().as_str();
        if matches.value_source(id) == Some(ValueSource::CommandLine) {
            let option = arg.get_long().map_or(id.to_string(), |l| format!("--{l}"));
            Cli::command()
                .error(
                    ErrorKind::ArgumentConflict,
                    format!("{option} is an option of the run in the base image, not of `{name}`; `run` takes it after its name: run {option} .. IMAGE"),
                )
                .exit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("ch09-image").chain(args.iter().copied()))
    }

    #[test]
    fn quiet_and_store_go_before_or_after_a_subcommand() {
        for args in [
            &["-q", "--store", "/s", "images"][..],
            &["images", "--quiet", "--store", "/s"],
        ] {
            let cli = parse(args).unwrap();
            assert!(cli.common.quiet, "{args:?}");
            assert_eq!(cli.store.as_deref(), Some(std::path::Path::new("/s")));
            assert!(matches!(cli.subcommand, Some(Sub::Images)), "{args:?}");
        }
    }

    #[test]
    fn a_command_is_a_run_in_the_base_image_and_run_takes_the_rest() {
        let cli = parse(&["-q", "--", "images"]).unwrap();
        assert!(cli.subcommand.is_none());
        assert_eq!(cli.common.command, ["images"], "after --, a command");
        let cli = parse(&["ls", "-l"]).unwrap();
        assert_eq!(cli.common.command, ["ls", "-l"]);

        let cli = parse(&["run", "--cpus", "0.5", "--keep", "app:v1", "ls", "-l"]).unwrap();
        let Some(Sub::Run {
            run,
            image,
            command,
            shell,
        }) = cli.subcommand
        else {
            panic!("not a run")
        };
        assert!(run.container.keep && run.container.limits.cpus.is_some() && !shell);
        assert_eq!(image.to_string(), "app:v1");
        assert_eq!(
            command,
            ["ls", "-l"],
            "after IMAGE, the command's own options"
        );
        assert!(parse(&["run", "--shell", "app", "--", "ls"]).is_err());
        assert!(parse(&["run", "Bad"]).is_err());
        assert!(parse(&["images", "--cpus", "1"]).is_err());
    }
}
