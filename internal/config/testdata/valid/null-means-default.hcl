# null is how HCL spells "not set": the default applies.
listen = null

limits {
  max_connections = null
}
