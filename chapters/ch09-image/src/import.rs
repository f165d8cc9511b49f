//! Images in from files: a docker-archive (`docker save`: `manifest.json`
//! and layer tars) or an OCI image layout (`index.json`, `blobs/sha256/`),
//! each as a tar file or a directory. Every blob is checked against its
//! digest; each layer is unpacked once into the store.
