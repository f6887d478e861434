"""The optional Orfeo ToolBox backend: a binding over Debian's OTB application engine, OTB learners."""
