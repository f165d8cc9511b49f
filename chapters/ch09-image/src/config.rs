//! An image config to the container's process: the command (`Entrypoint`
//! then `Cmd`, or the command given), `Env`, `WorkingDir` and `User`.
