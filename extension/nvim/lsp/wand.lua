-- Config for Neovim 0.11's `vim.lsp.config` / `vim.lsp.enable('wand')`, found on 'runtimepath'
-- when extension/nvim is installed as a plugin. Override fields with vim.lsp.config('wand', {...}).
return {
  cmd = { 'wand-lsp' },
  filetypes = { 'yaml', 'python', 'sql' },
  root_dir = function(bufnr, on_dir)
    local root = require('wand').root_dir(vim.api.nvim_buf_get_name(bufnr))
    if root then
      on_dir(root)
    end
  end,
}
