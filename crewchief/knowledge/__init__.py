"""Knowledge: what crewchief keeps and finds beyond one request (context windows first)."""
