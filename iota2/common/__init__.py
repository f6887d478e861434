"""iota2's library API for scripts: OTB-style applications (:mod:`iota2.common.otb_app_bank`) and the images
they exchange (:mod:`iota2.common.images`)."""
