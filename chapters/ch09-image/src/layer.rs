//! A layer tar to a directory and back. In a layer tar a deletion is a
//! file named `.wh.NAME` and an opaque directory holds `.wh..wh..opq`; in an
//! overlay's layer the same are a 0/0 character device and the xattr
//! `trusted.overlay.opaque=y` (chapter 8).
