"""Other agents' protocols: crewchief as an MCP server (``mcp_server``) and as an A2A agent
(``a2a``), both on top of the :class:`~crewchief.client.facade.Crewchief` facade."""
