//! Build an image from a Containerfile: `FROM`, `RUN`, `COPY`, `ENV`,
//! `WORKDIR`, `CMD`, `ENTRYPOINT`. Each `RUN` runs in a container over the
//! layers so far and its upper becomes a new layer; a cache keyed on the
//! parent, the instruction and (for `COPY`) the files' content skips what
//! is unchanged.
