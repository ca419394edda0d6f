"""Users, devices and sessions, registration, login, JWT and profiles."""
