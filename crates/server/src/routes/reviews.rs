//! Usage reviews. (Being filled in.)
