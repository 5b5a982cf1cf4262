"""The one exception type that the CLI turns into a one-line message and a non-zero exit."""


class UserError(Exception):
  """Bad input from the user (file, config value, flag): the message names the culprit and the reason."""
