//! `build` against the kernel, each test with a store of its own: five
//! steps, then a rebuild that the cache answers whole (no container, well
//! under the 50 ms the issue asks for); a changed `COPY` source rebuilds
//! from that step on; a failing `RUN` leaves nothing named; `COPY` cannot
//! reach out of its context; an instruction the builder does not run is
//! refused with its line, before any step runs; the store's garbage
//! collection keeps the cache until it is pruned.

mod single;

use ch09_image::build::{build, prune_cache, Built};
use single::{names, reference, run_tests, write, Fixture, BASE};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

fn main() {
    run_tests(&[
        (
            "five_steps_then_a_rebuild_is_all_cached_with_no_container",
            five_steps_then_a_rebuild_is_all_cached_with_no_container,
        ),
        (
            "a_changed_copy_source_rebuilds_that_step_and_the_later_ones",
            a_changed_copy_source_rebuilds_that_step_and_the_later_ones,
        ),
        (
            "run_sees_the_env_and_workdir_so_far_and_only_lo",
            run_sees_the_env_and_workdir_so_far_and_only_lo,
        ),
        (
            "a_failing_run_names_its_step_and_exit_code_and_tags_nothing",
            a_failing_run_names_its_step_and_exit_code_and_tags_nothing,
        ),
        (
            "copy_cannot_reach_out_of_the_context",
            copy_cannot_reach_out_of_the_context,
        ),
        (
            "an_unknown_instruction_is_refused_with_its_line_before_any_step",
            an_unknown_instruction_is_refused_with_its_line_before_any_step,
        ),
        (
            "rmi_keeps_what_the_cache_points_to_until_it_is_pruned",
            rmi_keeps_what_the_cache_points_to_until_it_is_pruned,
        ),
        (
            "a_prune_during_a_build_never_names_a_half_image",
            a_prune_during_a_build_never_names_a_half_image,
        ),
        (
            "two_steps_that_make_the_same_layer_still_run",
            two_steps_that_make_the_same_layer_still_run,
        ),
        (
            "from_scratch_with_copy_only_makes_an_image",
            from_scratch_with_copy_only_makes_an_image,
        ),
        (
            "entrypoint_clears_an_inherited_cmd_but_not_one_set_here",
            entrypoint_clears_an_inherited_cmd_but_not_one_set_here,
        ),
    ]);
}

const FIVE_STEPS: &str = "# five steps over the busybox image
FROM workshop/busybox
RUN echo built > /built && rm /etc/group \\
    && mkdir -p /app
COPY hello.txt conf /app/
ENV GREETING=hello \\
    PATH=/app/bin:/usr/bin:/bin
WORKDIR /app
CMD [\"cat\", \"/app/hello.txt\"]
";

/// The host has no mount under `dir`: a step's overlay went with its
/// container's mount namespace.
fn assert_no_mount_under(dir: &Path) {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = dir.to_string_lossy();
    let left: Vec<&str> = mountinfo.lines().filter(|l| l.contains(&*dir)).collect();
    assert!(left.is_empty(), "mounts left on the host: {left:#?}");
}

fn build_ok(fixture: &Fixture, context: &Path, tag: &str) -> Built {
    build(&fixture.store, context, None, &reference(tag), false)
        .unwrap_or_else(|e| panic!("build {tag}: {e:#}"))
}

fn five_steps_then_a_rebuild_is_all_cached_with_no_container() {
    let fixture = Fixture::new("ch09-build-five");
    let context = fixture.context(
        "context",
        FIVE_STEPS,
        &[("hello.txt", "hello\n"), ("conf/a.conf", "a=1\n")],
    );
    symlink("/etc/passwd", context.join("conf/link")).unwrap(); // kept as a link, not followed

    let first = build_ok(&fixture, &context, "workshop/app:v1");
    assert_no_mount_under(fixture.dir.path());
    assert_eq!(
        (first.steps, first.cached, first.containers),
        (5, 0, 1),
        "first build: 5 steps, none cached, one container (the RUN)"
    );
    let image = &first.image;
    assert_eq!(image.reference, reference("workshop/app:v1"));
    assert_eq!(image.diff_ids().len(), 3, "base + RUN + COPY");
    let config = image.config.config().clone().unwrap();
    let env = config.env().clone().unwrap();
    assert!(env.contains(&"GREETING=hello".to_string()), "{env:?}");
    assert!(
        env.contains(&"PATH=/app/bin:/usr/bin:/bin".to_string()),
        "{env:?}"
    );
    assert_eq!(config.working_dir().as_deref(), Some("/app"));
    assert_eq!(
        config.cmd().clone().unwrap(),
        ["cat", "/app/hello.txt"].map(String::from)
    );
    let history = image.config.history().clone().unwrap();
    assert_eq!(history.len(), 6, "import + 5 steps: {history:?}");
    assert_eq!(
        history
            .iter()
            .map(|h| h.empty_layer().unwrap_or(false))
            .collect::<Vec<_>>(),
        [false, false, false, true, true, true],
        "ENV, WORKDIR, CMD make no layer"
    );

    // The RUN's layer: its new file, and the deletion as a whiteout.
    let lowers = image.lowers(&fixture.store);
    let run_layer = &lowers[1];
    assert_eq!(
        std::fs::read_to_string(run_layer.join("built")).unwrap(),
        "built\n"
    );
    let group = std::fs::symlink_metadata(run_layer.join("etc/group")).unwrap();
    assert!(ch08_overlay::is_whiteout(&group), "etc/group: {group:?}");
    // The COPY's layer: the files, root's, with their modes; the link kept.
    let copy_layer = &lowers[0];
    let hello = std::fs::metadata(copy_layer.join("app/hello.txt")).unwrap();
    assert_eq!(
        (hello.uid(), hello.gid(), hello.mode() & 0o777),
        (0, 0, 0o644)
    );
    assert_eq!(
        std::fs::read_link(copy_layer.join("app/link")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert!(
        copy_layer.join("app/a.conf").is_file(),
        "a directory's contents are copied"
    );

    // The rebuild: every step from the cache, no container, fast.
    let started = Instant::now();
    let again = build_ok(&fixture, &context, "workshop/app:v1");
    let took = started.elapsed();
    println!();
    println!(
        "    rebuild of 5 unchanged steps: {:.1} ms, {} cached, {} containers",
        took.as_secs_f64() * 1000.0,
        again.cached,
        again.containers
    );
    assert_eq!((again.steps, again.cached, again.containers), (5, 5, 0));
    assert_eq!(again.image.manifest_digest, first.image.manifest_digest);
    assert!(
        took < Duration::from_millis(500),
        "a rebuild with nothing changed took {took:?} (the issue asks for < 50 ms; 500 ms is CI's bound)"
    );
    // Under another name: the same image, still from the cache.
    let other = build_ok(&fixture, &context, "workshop/app:v2");
    assert_eq!((other.cached, other.containers), (5, 0));
    assert_eq!(other.image.id, first.image.id);
    assert!(fixture.store.resolve(&reference("workshop/app:v2")).is_ok());
}

fn a_changed_copy_source_rebuilds_that_step_and_the_later_ones() {
    let fixture = Fixture::new("ch09-build-changed");
    let context = fixture.context(
        "context",
        "FROM workshop/busybox\n\
         RUN echo one > /one\n\
         COPY hello.txt /app/hello.txt\n\
         RUN cat /app/hello.txt > /copied\n\
         ENV DONE=yes\n",
        &[("hello.txt", "hello\n")],
    );
    let first = build_ok(&fixture, &context, "workshop/changed");
    assert_eq!((first.cached, first.containers), (0, 2));

    write(&context.join("hello.txt"), "changed\n");
    let second = build_ok(&fixture, &context, "workshop/changed");
    assert_eq!(
        (second.cached, second.containers),
        (1, 1),
        "the first RUN cached; COPY, the second RUN and ENV again"
    );
    assert_ne!(second.image.id, first.image.id);
    let top = &second.image.lowers(&fixture.store)[0];
    assert_eq!(
        std::fs::read_to_string(top.join("copied")).unwrap(),
        "changed\n"
    );

    // A mode is content too.
    let path = context.join("hello.txt");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let third = build_ok(&fixture, &context, "workshop/changed");
    assert_eq!(
        (third.cached, third.containers),
        (1, 1),
        "chmod rebuilds COPY on"
    );
    // Back as it was: all from the cache.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let fourth = build_ok(&fixture, &context, "workshop/changed");
    assert_eq!((fourth.cached, fourth.containers), (4, 0));
    assert_eq!(fourth.image.id, second.image.id);
}

fn run_sees_the_env_and_workdir_so_far_and_only_lo() {
    let fixture = Fixture::new("ch09-build-env");
    let context = fixture.context(
        "context",
        "FROM workshop/busybox\n\
         ENV GREETING=\"hello there\"\n\
         ENV MESSAGE=\"$GREETING, world\"\n\
         WORKDIR /work\n\
         WORKDIR dir\n\
         RUN [\"/bin/sh\", \"-c\", \"pwd > /pwd; echo $MESSAGE > /greeting; \
         tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' > /links; hostname > /hostname\"]\n",
        &[],
    );
    let built = build_ok(&fixture, &context, "workshop/env");
    let top = &built.image.lowers(&fixture.store)[0];
    let read = |name: &str| std::fs::read_to_string(top.join(name)).unwrap();
    assert_eq!(read("pwd"), "/work/dir\n");
    assert_eq!(
        read("greeting"),
        "hello there, world\n",
        "ENV expands the env before it"
    );
    assert_eq!(read("links"), "lo\n", "a build step has no network but lo");
    assert_eq!(read("hostname"), "build\n");
    assert!(
        top.join("work/dir").is_dir(),
        "WORKDIR made when RUN needs it"
    );
}

fn a_failing_run_names_its_step_and_exit_code_and_tags_nothing() {
    let fixture = Fixture::new("ch09-build-fails");
    let context = fixture.context(
        "context",
        "FROM workshop/busybox\n\
         ENV A=1\n\
         RUN echo about to fail; echo written > /written; exit 3\n\
         CMD [\"true\"]\n",
        &[],
    );
    let layers_before = fixture.layer_dirs();
    let err = build(
        &fixture.store,
        &context,
        None,
        &reference("workshop/fails"),
        false,
    )
    .unwrap_err();
    let text = format!("{err:#}");
    for want in [
        "step 2/3",
        "line 3: RUN echo about to fail",
        "exit code 3",
        "about to fail",
    ] {
        assert!(text.contains(want), "want {want:?} in: {text}");
    }
    assert!(fixture.store.resolve(&reference("workshop/fails")).is_err());
    let named: Vec<String> = fixture
        .store
        .images()
        .unwrap()
        .iter()
        .map(|i| i.reference.to_string())
        .collect();
    assert_eq!(named, [BASE]);
    assert_eq!(fixture.layer_dirs(), layers_before, "no layer kept");
    assert_eq!(
        names(&fixture.store.root.join("tmp")),
        Vec::<String>::new(),
        "the run's directories are gone"
    );
    assert_no_mount_under(fixture.dir.path());
}

fn copy_cannot_reach_out_of_the_context() {
    let fixture = Fixture::new("ch09-build-escape");
    write(&fixture.dir.path().join("secret"), "not yours\n");
    let context = fixture.context("context", "", &[("inside.txt", "ok\n")]);
    symlink("/etc", context.join("etc-link")).unwrap();
    symlink("../secret", context.join("secret-link")).unwrap();
    for (source, want) in [
        ("../secret", "outside the build context"),
        ("secret-link", "outside the build context"),
        ("etc-link/passwd", "outside the build context"),
        ("etc-link", "outside the build context"),
        ("missing.txt", "no such file in the build context"),
    ] {
        write(
            &context.join("Containerfile"),
            &format!("FROM workshop/busybox\nCOPY {source} /x\n"),
        );
        let err = build(
            &fixture.store,
            &context,
            None,
            &reference("workshop/escape"),
            false,
        )
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains(want) && text.contains(&format!("COPY {source}")),
            "COPY {source}: want {want:?} in: {text}"
        );
    }
    assert!(fixture
        .store
        .resolve(&reference("workshop/escape"))
        .is_err());
    // Absolute sources are the context's, as docker reads them.
    write(
        &context.join("Containerfile"),
        "FROM workshop/busybox\nCOPY /inside.txt /x\n",
    );
    let built = build_ok(&fixture, &context, "workshop/escape");
    let top = &built.image.lowers(&fixture.store)[0];
    assert_eq!(std::fs::read_to_string(top.join("x")).unwrap(), "ok\n");
}

fn an_unknown_instruction_is_refused_with_its_line_before_any_step() {
    let fixture = Fixture::new("ch09-build-unknown");
    let context = fixture.context(
        "context",
        "FROM workshop/busybox\nRUN echo never > /never\n\n# a comment\nFROBNICATE now\n",
        &[],
    );
    let err = build(
        &fixture.store,
        &context,
        None,
        &reference("workshop/unknown"),
        false,
    )
    .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("Containerfile line 5: unknown instruction \"FROBNICATE\""),
        "{text}"
    );
    assert!(
        !fixture.store.root.join("cache").exists(),
        "no step ran before the refusal"
    );
    write(
        &context.join("Containerfile"),
        "FROM workshop/busybox\nUSER 1000\n",
    );
    let text = format!(
        "{:#}",
        build(
            &fixture.store,
            &context,
            None,
            &reference("workshop/unknown"),
            false
        )
        .unwrap_err()
    );
    assert!(
        text.contains("line 2: USER is not supported by this builder"),
        "{text}"
    );
    write(
        &context.join("Containerfile"),
        "FROM nothing/here\nENV A=1\n",
    );
    let text = format!(
        "{:#}",
        build(
            &fixture.store,
            &context,
            None,
            &reference("workshop/unknown"),
            false
        )
        .unwrap_err()
    );
    assert!(
        text.contains("Containerfile line 1: FROM nothing/here: no image nothing/here:latest"),
        "{text}"
    );
}

fn rmi_keeps_what_the_cache_points_to_until_it_is_pruned() {
    let fixture = Fixture::new("ch09-build-gc");
    let context = fixture.context(
        "context",
        "FROM workshop/busybox\nRUN echo kept > /kept\nENV A=1\n",
        &[],
    );
    let first = build_ok(&fixture, &context, "workshop/gc");
    let run_layer = first.image.lowers(&fixture.store)[0].clone();
    fixture.store.remove(&reference("workshop/gc")).unwrap();
    assert!(
        run_layer.is_dir(),
        "rmi removed a layer the cache points to"
    );
    let again = build_ok(&fixture, &context, "workshop/gc");
    assert_eq!(
        (again.cached, again.containers),
        (2, 0),
        "after rmi, a rebuild is still all cached"
    );

    // Pruned, the cache lets go: what no named image uses goes.
    fixture.store.remove(&reference("workshop/gc")).unwrap();
    let removed = prune_cache(&fixture.store).unwrap();
    assert_eq!(removed.layers.len(), 1, "the RUN's layer: {removed:?}");
    assert!(!run_layer.exists());
    assert_eq!(fixture.layer_dirs().len(), 1, "the base stays: it is named");
    let rebuilt = build_ok(&fixture, &context, "workshop/gc");
    assert_eq!((rebuilt.cached, rebuilt.containers), (0, 1));
    assert_eq!(
        rebuilt.image.id, first.image.id,
        "the same steps make the same image (reproducible layers)"
    );
}

fn a_prune_during_a_build_never_names_a_half_image() {
    let fixture = Fixture::new("ch09-build-prune-race");
    let context = fixture.context(
        "context",
        "FROM workshop/busybox\nCOPY a.txt /a.txt\nRUN sleep 2\nENV X=1\n",
        &[("a.txt", "A\n")],
    );
    let tag = reference("workshop/race");
    let tmp = fixture.store.root.join("tmp");
    let outcome = std::thread::scope(|scope| {
        let building = scope.spawn(|| build(&fixture.store, &context, None, &tag, false));
        // The RUN's container is up (its directory is there): the COPY's
        // step image is in the cache only, which a prune forgets.
        let deadline = Instant::now() + Duration::from_secs(30);
        while names(&tmp).is_empty() && !building.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        prune_cache(&fixture.store).unwrap();
        building.join().unwrap()
    });
    match outcome {
        Ok(_) => {
            let image = fixture.store.resolve(&tag).unwrap();
            for layer in image.manifest.layers() {
                assert!(
                    fixture.store.blob_path(layer.digest()).is_file(),
                    "{tag} is named, but its layer blob {} is gone",
                    layer.digest()
                );
            }
        }
        Err(e) => {
            // Either the build saw the store change at its end, or (the
            // prune came before the RUN held its layers: a slow machine) the
            // RUN found the COPY's layer gone; either way it says so, and
            // names nothing.
            let e = format!("{e:#}");
            assert!(e.contains("build again") || e.contains("is gone"), "{e}");
            assert!(fixture.store.resolve(&tag).is_err(), "named after: {e}");
        }
    }
}

fn two_steps_that_make_the_same_layer_still_run() {
    let fixture = Fixture::new("ch09-build-same-layer");
    // The second touch copies /a up again: the same tar (mtimes are 0 in
    // it), so the same diff-id twice in the image.
    let context = fixture.context(
        "context",
        "FROM workshop/busybox\nRUN touch /a\nRUN touch /a\nRUN ls /a\n",
        &[],
    );
    let built = build_ok(&fixture, &context, "workshop/same-layer");
    let diff_ids = built.image.diff_ids();
    assert_eq!(diff_ids.len(), 4);
    assert_eq!(diff_ids[1], diff_ids[2], "the two touches made one layer");
    assert_eq!(built.image.lowers(&fixture.store).len(), 3, "stacked once");
}

fn from_scratch_with_copy_only_makes_an_image() {
    let fixture = Fixture::new("ch09-build-scratch");
    let context = fixture.context(
        "context",
        "FROM scratch\nCOPY data /data/\nCMD [\"/data/run\"]\n",
        &[("data/run", "#!/bin/sh\n"), ("data/sub/file", "x\n")],
    );
    let built = build_ok(&fixture, &context, "workshop/scratch");
    assert_eq!(built.image.diff_ids().len(), 1);
    let layer = &built.image.lowers(&fixture.store)[0];
    assert!(layer.join("data/sub/file").is_file());
    let dir = std::fs::metadata(layer.join("data")).unwrap();
    assert_eq!(dir.mode() & 0o7777, 0o755, "a new directory is 0755");

    write(
        &context.join("Containerfile"),
        "FROM scratch\nRUN echo no shell here\n",
    );
    let text = format!(
        "{:#}",
        build(
            &fixture.store,
            &context,
            None,
            &reference("workshop/scratch2"),
            false
        )
        .unwrap_err()
    );
    assert!(text.contains("FROM scratch has none yet"), "{text}");
}

fn entrypoint_clears_an_inherited_cmd_but_not_one_set_here() {
    let fixture = Fixture::new("ch09-build-entrypoint");
    let context = fixture.context(
        "context",
        "FROM workshop/busybox\nCMD [\"echo\", \"inherited\"]\n",
        &[],
    );
    build_ok(&fixture, &context, "workshop/with-cmd");
    let config = |built: &Built| built.image.config.config().clone().unwrap();

    write(
        &context.join("Containerfile"),
        "FROM workshop/with-cmd\nENTRYPOINT [\"/bin/echo\"]\n",
    );
    let inherited = build_ok(&fixture, &context, "workshop/entry1");
    assert_eq!(
        config(&inherited).cmd(),
        &None,
        "docker drops an inherited CMD"
    );
    assert_eq!(
        config(&inherited).entrypoint().clone().unwrap(),
        ["/bin/echo"]
    );

    write(
        &context.join("Containerfile"),
        "FROM workshop/with-cmd\nCMD [\"here\"]\nENTRYPOINT echo\n",
    );
    let here = build_ok(&fixture, &context, "workshop/entry2");
    assert_eq!(config(&here).cmd().clone().unwrap(), ["here"]);
    assert_eq!(
        config(&here).entrypoint().clone().unwrap(),
        ["/bin/sh", "-c", "echo"],
        "the shell form"
    );
}
