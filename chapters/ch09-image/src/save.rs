//! An image out of the store: as an OCI image layout (a directory) or as a
//! docker-archive tar (`docker load` reads it).
